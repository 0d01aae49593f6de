"""Where training exports go (issue 19 §1): the run directory by default, a weights folder only
when named, and an existing entry replaced only with --replace, its previous file kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import tests.engine.train_helpers  # noqa: F401  (registers toy.*, loss.*, metric.*)
from nodegraph.train import train_cli
from nodegraph.train.export import graphs_using

ROOT = Path(__file__).resolve().parents[2]
CGAN = ROOT / "graphs" / "tiny_cgan_train.json"
SMALL = ["--set", "train.sample_every=null", "--set", "train.log_every=1", "--set", "data.size=16",
         "--set", "train.batch_size=4"]


pytestmark = pytest.mark.usefixtures("one_thread")


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(train_cli, [str(CGAN), *args], catch_exceptions=False)


def test_short_run_on_a_shipped_graph_never_touches_weights(tmp_path: Path) -> None:
    """``nodegraph train graphs/tiny_cgan_train.json --steps 3`` (a shipped training graph whose
    export names a shipped default) writes RUN/export/ + a manifest fragment, leaves weights/
    exactly as it was, and ends by saying where the file went and how to use it.
    Mutant killed: ``export_dir`` falling back to the project's weights/ (the old default)."""
    before = snapshot(ROOT / "weights")
    run = tmp_path / "smoke"
    res = invoke("--steps", "3", "--run-dir", str(run), *SMALL)
    assert res.exit_code == 0, res.output
    assert snapshot(ROOT / "weights") == before
    out = run / "export" / "tiny_cgan_G.safetensors"
    entry = json.loads((run / "export" / "manifest.json").read_text())["weights"]["tiny_cgan_G"]
    assert out.is_file() and entry["provenance"]["steps"] == 3 and entry["file"] == out.name
    lines = res.output.strip().splitlines()
    assert any(line.startswith("exported tiny_cgan_G -> ") and "export/tiny_cgan_G.safetensors" in line
               for line in lines)
    assert any("--set gen.weights=" in line and str(out.name) in line for line in lines)
    assert "NODEGRAPH_WEIGHTS=" in lines[-1]


def test_replacing_an_entry_needs_the_flag_and_keeps_the_previous_file(tmp_path: Path) -> None:
    """A named weights folder: a new name is added; an existing one is refused before any training
    (exit 1, one paragraph naming --replace); with --replace the previous file is renamed
    NAME.prev-<time>.safetensors, listed in the manifest, and the new entry points to it.
    Mutants killed: ``check_replace`` returning early; ``keep_previous`` not called (the old file
    overwritten); the new entry inheriting the old entry's hand-added fields."""
    wdir = tmp_path / "weights"
    res = invoke("--steps", "2", "--run-dir", str(tmp_path / "a"), "--weights-dir", str(wdir), *SMALL)
    assert res.exit_code == 0, res.output
    first = (wdir / "tiny_cgan_G.safetensors").read_bytes()
    m = json.loads((wdir / "manifest.json").read_text())["weights"]
    m["tiny_cgan_G"]["quality"]["measured_by_hand"] = 1.0
    m["tiny_cgan_G"]["samples"] = "docs/img/old.png"  # a hand-added figure of the old weights
    (wdir / "manifest.json").write_text(json.dumps({"weights": m}))

    res = invoke("--steps", "3", "--run-dir", str(tmp_path / "b"), "--weights-dir", str(wdir), *SMALL)
    assert res.exit_code == 1 and "--replace" in res.output and "already holds 'tiny_cgan_G'" in res.output
    assert not (tmp_path / "b" / "checkpoints").exists()  # refused before training
    assert (wdir / "tiny_cgan_G.safetensors").read_bytes() == first

    res = invoke("--steps", "3", "--run-dir", str(tmp_path / "c"), "--weights-dir", str(wdir), "--replace", *SMALL)
    assert res.exit_code == 0, res.output
    m = json.loads((wdir / "manifest.json").read_text())["weights"]
    new = m["tiny_cgan_G"]
    prev = m[new["previous"]]
    assert new["provenance"]["steps"] == 3 and prev["provenance"]["steps"] == 2
    assert "measured_by_hand" not in new["quality"] and "measured_by_hand" in prev["quality"]
    assert "samples" not in new and prev["samples"] == "docs/img/old.png"
    assert (wdir / prev["file"]).read_bytes() == first
    assert prev["file"].startswith("tiny_cgan_G.prev-") and "replaced" in prev
    assert (wdir / "tiny_cgan_G.safetensors").read_bytes() != first


def test_usage_points_at_a_shipped_graph_that_loads_the_name() -> None:
    """The "use it" line names a real inference graph and node for a shipped default."""
    found = graphs_using("spade_landscape")
    assert any(g.name == "spade.json" and nid == "spade" for g, nid in found)
    assert all("train" not in json.loads(g.read_text()) for g, _ in found)


def test_docs_commands_that_make_shipped_defaults_say_how_they_were_exported() -> None:
    """README and docs: every `nodegraph train` line that exports a shipped default into weights/
    names the folder and the replace flag (a copied command must not silently overwrite)."""
    shipped = {e["provenance"]["graph"] for e in
               json.loads((ROOT / "weights" / "manifest.json").read_text())["weights"].values()
               if isinstance(e.get("provenance"), dict) and "graph" in e["provenance"]}
    texts = [(ROOT / "README.md").read_text()] + [p.read_text() for p in (ROOT / "docs").glob("*.md")]
    mentions = [line for t in texts for line in t.splitlines()
                if "nodegraph train " in line and "--weights-dir weights" in line]
    assert mentions, "no documented command exports into weights/"
    assert all("--replace" in line for line in mentions)
    assert any(any(g in line for g in shipped) for line in mentions)
