"""The command-line side of mapping: `run --over` killed by SIGTERM and re-run, two torchrun ranks
equal to one process (index, files, all-reduced feature statistics), a sweep section through
`run` / `validate`, `replay` of a plain run.

Mutants watched failing: every rank taking every item (test_torchrun_two_ranks_match_one_process
counts 10 computations for 5 items), no SIGTERM handler (test_sigterm_then_rerun_finishes_rest: the
process dies by the signal instead of unwinding with status 130)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image as PILImage
from safetensors.torch import load_file

from nodegraph.cli import main
from nodegraph.mapper import map_graph
from nodegraph.runindex import read_records

from . import map_nodes  # noqa: F401  (registers ngmap.Work here; the subprocesses import it by path)

HERE = Path(__file__).resolve().parent
DRIVER = ("import runpy, sys; sys.path[:0] = [{here!r}]; import map_nodes; "
          "sys.argv = ['nodegraph'] + sys.argv[1:]; runpy.run_module('nodegraph.cli', run_name='__main__')")


def images(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        PILImage.fromarray((np.random.RandomState(i).rand(16, 16, 3) * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


def write_graph(tmp_path: Path, work: dict | None = None, sweep: dict | None = None, scale: bool = False) -> Path:
    nodes = {
        "img": {"type": "io.LoadImage", "params": {"path": ""}},
        "w": {"type": "ngtest.Scale" if scale else "ngmap.Work",
              "params": {"factor": 0.5} if scale else {"log": str(tmp_path / "calls.log"), **(work or {})},
              "inputs": {"image": "img.image"}},
        "m": {"type": "ngtest.Mean", "inputs": {"image": "w.image"}},
        "save": {"type": "io.SaveImage", "params": {"path": "out/w.png"}, "inputs": {"image": "w.image"}},
    }
    raw = {"nodegraph": 1, "name": "g", "nodes": nodes, **({"sweep": sweep} if sweep else {})}
    (tmp_path / "g.json").write_text(json.dumps(raw))
    return tmp_path / "g.json"


def test_sigterm_then_rerun_finishes_rest(tmp_path, plugin_env):
    folder = images(tmp_path / "in", 10)
    g = write_graph(tmp_path, {"sleep": 0.3})
    cmd = [sys.executable, "-c", DRIVER.format(here=str(HERE)), "run", str(g), "--over", f"img.path={folder}", "-q"]
    proc = subprocess.Popen(cmd, env=plugin_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    index = tmp_path / "out" / "g.index.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and (not index.exists() or len(index.read_text().splitlines()) < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err, err
    recs = [json.loads(x) for x in index.read_text().splitlines()]  # every line whole
    k = len(recs)
    assert 2 <= k < 10 and all(r["status"] == "ok" for r in recs)
    before = len((tmp_path / "calls.log").read_text().split())
    done = subprocess.run(cmd, env=plugin_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "calls.log").read_text().split()) - before == 10 - k  # done items not recomputed
    assert [r["index"] for r in read_records(index)] == list(range(10))


def test_torchrun_two_ranks_match_one_process(tmp_path, plugin_env):
    folder = images(tmp_path / "in", 5)
    g = write_graph(tmp_path)
    one = {r.index: r for r in map_graph(g, {"img.path": str(folder)}, out_dir=tmp_path / "one", stats=["w.image"])}
    (tmp_path / "calls.log").unlink()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(here=str(HERE)).replace("; ", "\n"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(driver),
           "run", str(g), "--over", f"img.path={folder}", "--out", str(tmp_path / "two"), "-q", "--stats", "w.image"]
    env = {**plugin_env, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len((tmp_path / "calls.log").read_text().split()) == 5  # each item computed by one rank
    s1, s2 = (load_file(str(tmp_path / d / "out" / "g.stats.safetensors")) for d in ("one", "two"))
    assert float(s2["w.image.n"]) == 5  # the two ranks' sums, all-reduced
    for k in s1:
        torch.testing.assert_close(s2[k], s1[k], rtol=0, atol=1e-12)
    recs = read_records(tmp_path / "two" / "out" / "g.index.jsonl")
    assert [r["index"] for r in recs] == list(range(5))
    assert not list((tmp_path / "two" / "out").glob("*.part*"))
    for r in recs:
        o = one[r["index"]]
        assert r["item"] == o.item and r["values"] == o.values
        assert [x["sha256"] for x in r["outputs"]] == [x["sha256"] for x in o.outputs]
        assert Path(r["outputs"][0]["path"]).relative_to(tmp_path / "two") == \
            Path(o.outputs[0]["path"]).relative_to(tmp_path / "one")


def test_sweep_section_via_run_and_validate(tmp_path):
    images(tmp_path, 1)
    g = write_graph(tmp_path, scale=True, sweep={"w.factor": [0.5, 1.0], "mode": "zip"})
    raw = json.loads(g.read_text())
    raw["nodes"]["img"]["params"]["path"] = "p0.png"
    g.write_text(json.dumps(raw))
    r = CliRunner().invoke(main, ["validate", str(g)])
    assert r.exit_code == 0 and "sweep of 2 variants" in r.output
    r = CliRunner().invoke(main, ["run", str(g), "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "g.sweep.csv").read_text().splitlines()[0].startswith("variant,w.factor,m.value")
    assert (tmp_path / "out" / "g.sweep.png").is_file()
    raw["sweep"] = {"w.factor": [0.5, 11], "w.nope": [1, 2], "mode": "zip"}
    g.write_text(json.dumps(raw))
    r = CliRunner().invoke(main, ["validate", str(g)])
    assert r.exit_code == 2 and "ngtest.Scale has no param 'nope'" in r.output


def test_plain_run_writes_lock_and_replays_identical(tmp_path):
    images(tmp_path, 1)
    g = write_graph(tmp_path, scale=True)
    raw = json.loads(g.read_text())
    raw["nodes"]["img"]["params"]["path"] = "p0.png"
    g.write_text(json.dumps(raw))
    r = CliRunner().invoke(main, ["run", str(g), "-q", "--no-cache", "--set", "w.factor=0.7"])
    assert r.exit_code == 0, r.output
    lock = json.loads((tmp_path / "out" / "g.lock.json").read_text())
    assert lock["kind"] == "run" and lock["params"]["w"]["factor"] == 0.7
    assert lock["inputs"]["img.path"]["sha256"] and lock["outputs"]["files"][0]["node"] == "save"
    r = CliRunner().invoke(main, ["replay", str(tmp_path / "out" / "g.lock.json"), "--out", str(tmp_path / "re")])
    assert r.exit_code == 0 and "2/2 output(s) identical" in r.output, r.output
    PILImage.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "p0.png")
    r = CliRunner().invoke(main, ["replay", str(tmp_path / "out" / "g.lock.json"), "--out", str(tmp_path / "re2")])
    assert r.exit_code == 1 and "input img.path" in r.output and "contents changed" in r.output
