"""Savers redo nothing they need not redo, and never claim a file they did not write (issue 19 §4):
a saver whose input key and target path are unchanged and whose file still holds the recorded
bytes is reported cached; a file changed or replaced since is written again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from nodegraph.cache import Cache
from nodegraph.events import EventBus
from nodegraph.executor import Executor
from nodegraph.graph import graph_from_dict


def chain(tmp_path: Path) -> dict:
    PILImage.fromarray((np.random.RandomState(0).rand(8, 8, 3) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    return {"nodegraph": 1, "nodes": {
        "img": {"type": "io.LoadImage", "params": {"path": "in.png"}},
        "a": {"type": "ngtest.Scale", "params": {"factor": 0.5}, "inputs": {"image": "img.image"}},
        "side": {"type": "ngtest.Scale", "params": {"factor": 0.9}, "inputs": {"image": "img.image"}},
        "save": {"type": "io.SaveImage", "params": {"path": "out/a.png"}, "inputs": {"image": "a.image"}},
        "save2": {"type": "io.SaveImage", "params": {"path": "out/side.png"}, "inputs": {"image": "side.image"}},
    }}


def run(raw: dict, tmp_path: Path, cache_dir: Path, overrides=None):
    g = graph_from_dict(raw, base_dir=tmp_path).with_overrides(overrides)
    bus = EventBus()
    Executor(g, device="cpu", cache=Cache(disk_dir=cache_dir), events=bus).run()
    done = sorted(e["node"] for e in bus.history if e["event"] == "done")
    why = {e["node"]: e["reason"] for e in bus.history if e["event"] == "start"}
    return done, why


def test_a_saver_whose_input_did_not_change_is_cached(tmp_path, cache_dir):
    """Changing one param upstream of ``save`` only: ``save2`` (same input key, same path, file
    intact) is reported cached and its file is not rewritten."""
    raw = chain(tmp_path)
    run(raw, tmp_path, cache_dir)
    before = (tmp_path / "out" / "side.png").stat().st_mtime_ns
    done, _ = run(raw, tmp_path, cache_dir, {"a.factor": 0.25})
    assert done == ["a", "save"]
    assert (tmp_path / "out" / "side.png").stat().st_mtime_ns == before


def test_a_file_changed_since_it_was_written_is_written_again(tmp_path, cache_dir):
    """Another run (or a person) wrote other bytes to ``out/a.png``: going back to the first
    params must rewrite it, not report the old save as cached over the other picture.
    Mutant killed: ``_changed_files`` returning [] (existence alone, the old behaviour)."""
    raw = chain(tmp_path)
    run(raw, tmp_path, cache_dir)
    first = (tmp_path / "out" / "a.png").read_bytes()
    run(raw, tmp_path, cache_dir, {"a.factor": 0.25})  # writes other bytes to the same path
    assert (tmp_path / "out" / "a.png").read_bytes() != first
    done, why = run(raw, tmp_path, cache_dir)
    assert done == ["save"] and "output file changed" in why["save"] and "a.png" in why["save"]
    assert (tmp_path / "out" / "a.png").read_bytes() == first
    (tmp_path / "out" / "side.png").write_bytes(b"edited by hand")
    done, why = run(raw, tmp_path, cache_dir)
    assert done == ["save2"] and "output file changed" in why["save2"]


def test_numbered_saves_are_recorded_too(tmp_path, cache_dir):
    raw = chain(tmp_path)
    raw["nodes"]["batch"] = {"type": "toy.Shapes", "params": {"size": 8, "length": 4, "batch_size": 2}}
    raw["nodes"]["saven"] = {"type": "io.SaveImage", "params": {"path": "out/n.png", "mode": "numbered"},
                             "inputs": {"image": "batch.image"}}
    run(raw, tmp_path, cache_dir)
    assert sorted(p.name for p in (tmp_path / "out").glob("n_*.png")) == ["n_000.png", "n_001.png"]
    assert "saven" not in run(raw, tmp_path, cache_dir)[0]
    (tmp_path / "out" / "n_001.png").unlink()
    assert "saven" in run(raw, tmp_path, cache_dir)[0]
