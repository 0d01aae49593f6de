"""Executor behaviour a user relies on: caching measured through the event log, error attribution,
output contracts, planning only what is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import nodegraph
from nodegraph.cache import Cache
from nodegraph.events import EventBus, read_log
from nodegraph.executor import Executor
from nodegraph.graph import graph_from_dict
from nodegraph.node import NodeError


def chain(tmp_path: Path) -> dict:
    PILImage.fromarray((np.random.RandomState(0).rand(16, 16, 3) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    return {"nodegraph": 1, "nodes": {
        "img": {"type": "io.LoadImage", "params": {"path": "in.png"}},
        "a": {"type": "ngtest.Scale", "params": {"factor": 0.5}, "inputs": {"image": "img.image"}},
        "b": {"type": "ngtest.Scale", "params": {"factor": 1.5}, "inputs": {"image": "a.image"}},
        "side": {"type": "ngtest.Scale", "params": {"factor": 0.9}, "inputs": {"image": "img.image"}},
        "save": {"type": "io.SaveImage", "params": {"path": "out/b.png"}, "inputs": {"image": "b.image"}},
        "save2": {"type": "io.SaveImage", "params": {"path": "out/side.png"}, "inputs": {"image": "side.image"}},
    }}


def run(raw: dict, tmp_path: Path, cache_dir: Path | None, overrides=None, outputs=None):
    g = graph_from_dict(raw, base_dir=tmp_path).with_overrides(overrides)
    bus = EventBus()
    cache = Cache(disk_dir=cache_dir, enabled=cache_dir is not None)
    res = Executor(g, device="cpu", cache=cache, events=bus).run(outputs)
    return res, bus.history


def kinds(history, kind):
    return sorted(e["node"] for e in history if e["event"] == kind)


def test_second_identical_run_computes_nothing(tmp_path, cache_dir):
    raw = chain(tmp_path)
    _, h1 = run(raw, tmp_path, cache_dir)
    assert kinds(h1, "done") == ["a", "b", "img", "save", "save2", "side"]
    _, h2 = run(raw, tmp_path, cache_dir)  # a new executor: only the disk tier survives
    assert kinds(h2, "done") == []
    assert kinds(h2, "cached") == ["a", "b", "img", "save", "save2", "side"]


def test_changed_param_recomputes_only_downstream(tmp_path, cache_dir):
    raw = chain(tmp_path)
    run(raw, tmp_path, cache_dir)
    _, h = run(raw, tmp_path, cache_dir, overrides={"a.factor": 0.25})
    assert kinds(h, "done") == ["a", "b", "save"]
    assert kinds(h, "cached") == ["img", "save2", "side"]
    reason = next(e["reason"] for e in h if e["event"] == "start" and e["node"] == "a")
    assert "params changed: factor" in reason
    reason_b = next(e["reason"] for e in h if e["event"] == "start" and e["node"] == "b")
    assert "upstream changed: image" in reason_b


def test_editing_input_file_invalidates(tmp_path, cache_dir):
    raw = chain(tmp_path)
    run(raw, tmp_path, cache_dir)
    PILImage.new("RGB", (16, 16), (255, 0, 0)).save(tmp_path / "in.png")
    os.utime(tmp_path / "in.png", (time.time() + 5, time.time() + 5))
    res, h = run(raw, tmp_path, cache_dir)
    assert "img" in kinds(h, "done") and "b" in kinds(h, "done")
    assert torch.allclose(res["img"]["image"][0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_deleted_output_file_is_written_again(tmp_path, cache_dir):
    raw = chain(tmp_path)
    run(raw, tmp_path, cache_dir)
    (tmp_path / "out" / "b.png").unlink()
    _, h = run(raw, tmp_path, cache_dir)
    assert kinds(h, "done") == ["save"]
    assert (tmp_path / "out" / "b.png").is_file()


def test_no_cache_computes_everything(tmp_path, cache_dir):
    raw = chain(tmp_path)
    run(raw, tmp_path, cache_dir)
    _, h = run(raw, tmp_path, None)
    assert len(kinds(h, "done")) == 6


def test_ram_tier_is_bounded_in_bytes():
    c = Cache(ram_bytes=1000, disk_dir=None)
    c.put("a", {"x": torch.zeros(100)})  # 400 bytes
    c.put("b", {"x": torch.zeros(100)})
    c.put("c", {"x": torch.zeros(100)})  # evicts a (LRU)
    assert c.ram_used <= 1000
    assert c.get("a")[0] is None and c.get("c")[0] is not None
    c.put("big", {"x": torch.zeros(1000)})  # larger than the bound: never stored
    assert c.get("big")[0] is None


def test_ram_tier_serves_repeat_runs_in_one_process(tmp_path):
    raw = chain(tmp_path)
    g = graph_from_dict(raw, base_dir=tmp_path)
    bus = EventBus()
    ex = Executor(g, device="cpu", cache=Cache(disk_dir=None), events=bus)
    ex.run()
    n = len(bus.history)
    ex.run()
    tiers = {e["tier"] for e in bus.history[n:] if e["event"] == "cached"}
    assert tiers == {"ram"}


def test_plan_runs_only_what_outputs_need(tmp_path):
    raw = chain(tmp_path)
    res, h = run(raw, tmp_path, None, outputs=["b"])
    assert kinds(h, "done") == ["a", "b", "img"]
    assert set(res) == {"img", "a", "b"}


def test_error_in_node_names_node_type_and_shapes(tmp_path):
    raw = {"nodegraph": 1, "nodes": {"c": {"type": "ngtest.Const", "params": {"size": 5}},
                                     "x": {"type": "ngtest.Broken", "inputs": {"image": "c.image"}}}}
    with pytest.raises(NodeError) as e:
        run(raw, tmp_path, None)
    msg = str(e.value)
    assert "'x'" in msg and "ngtest.Broken" in msg and "(1, 3, 5, 5)" in msg


def test_output_contract_catches_a_broken_node(tmp_path):
    raw = {"nodegraph": 1, "nodes": {"c": {"type": "ngtest.Const"},
                                     "bad": {"type": "ngtest.BadOutput", "inputs": {"image": "c.image"}}}}
    with pytest.raises(NodeError) as e:
        run(raw, tmp_path, None)
    assert "bad.image" in str(e.value) and "ngtest.BadOutput" in str(e.value) and "[0.0, 1.0]" in str(e.value)


def test_weights_change_invalidates(tmp_path, cache_dir):
    from nodegraph.weights import save_atomic

    w = tmp_path / "w.safetensors"
    save_atomic({"weight": torch.ones(3, 3, 1, 1), "bias": torch.zeros(3)}, w)
    raw = {"nodegraph": 1, "nodes": {"c": {"type": "ngtest.Const"},
                                     "n": {"type": "ngtest.Net", "params": {"weights": str(w)},
                                           "inputs": {"image": "c.image"}}}}
    r1, _ = run(raw, tmp_path, cache_dir)
    save_atomic({"weight": -torch.ones(3, 3, 1, 1), "bias": torch.zeros(3)}, w)
    r2, h = run(raw, tmp_path, cache_dir)
    assert kinds(h, "done") == ["n"]
    assert not torch.allclose(r1["n"]["image"], r2["n"]["image"])


def test_python_api_create_and_run(tmp_path):
    resize = nodegraph.create("image.Resize", size=[4, 6])
    out = resize(image=torch.rand(2, 3, 8, 8))
    assert out["image"].shape == (2, 3, 4, 6)
    with pytest.raises(NodeError) as e:
        resize(image=torch.rand(3, 8, 8))
    assert "image.Resize.image" in str(e.value.where) and "rank 4" in str(e.value)
    p = tmp_path / "g.json"
    p.write_text(json.dumps(chain(tmp_path)))
    g = nodegraph.load_graph(p)
    res = nodegraph.run(g, overrides={"b.factor": 2.0}, outputs=["b"])
    expected = (res["img"]["image"] * 0.5 * 2.0).clamp(0, 1)
    assert torch.allclose(res["b"]["image"], expected)


def test_cli_run_with_set_out_and_log(tmp_path, plugin_env):
    raw = chain(tmp_path)
    p = tmp_path / "g.json"
    p.write_text(json.dumps(raw))
    out = tmp_path / "elsewhere"
    log = tmp_path / "run.jsonl"
    cmd = [sys.executable, "-m", "nodegraph.cli", "run", str(p), "--set", "a.factor=0.1", "--out", str(out),
           "--log", str(log), "--cache-dir", str(tmp_path / "c"), "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=plugin_env)
    assert r.returncode == 0, r.stderr
    assert (out / "out" / "b.png").is_file()
    # a graph writing to ../x.png (beside its folder) still writes inside --out
    raw2 = json.loads(p.read_text())
    raw2["nodes"]["save"]["params"]["path"] = "../up.png"
    g2 = tmp_path / "g2.json"
    g2.write_text(json.dumps(raw2))
    from nodegraph.graph import load_graph

    gg = load_graph(g2)
    gg.out_dir = out
    assert gg.params_for("save").path == str(out / "up.png")
    events = read_log(log)
    assert {"start", "done"} <= {e["event"] for e in events}
    done = [e for e in events if e["event"] == "done"]
    assert all("seconds" in e and e["node"] for e in done)
    r2 = subprocess.run(cmd, capture_output=True, text=True, env=plugin_env)
    assert r2.returncode == 0
    assert {e["event"] for e in read_log(log)[len(events):] if e["node"]} == {"cached"}


def test_cli_run_error_is_one_paragraph(tmp_path, plugin_env):
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    p = tmp_path / "g.json"
    p.write_text(json.dumps({"nodegraph": 1, "nodes": {
        "i": {"type": "io.LoadImage", "params": {"path": "bad.png"}},
        "s": {"type": "io.SaveImage", "params": {"path": "o.png"}, "inputs": {"image": "i.image"}}}}))
    r = subprocess.run([sys.executable, "-m", "nodegraph.cli", "run", str(p), "--no-cache", "-q"],
                       capture_output=True, text=True, env=plugin_env)
    assert r.returncode == 1
    assert "i.params.path" in r.stderr and "cannot read" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o.png").exists()


def test_cli_run_error_paragraph_is_printed_once_with_status_lines(tmp_path, plugin_env):
    """Without -q the status line names the failing node and the paragraph comes once, at the end
    (it was printed twice: in the status line and again as the final error)."""
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    p = tmp_path / "g.json"
    p.write_text(json.dumps({"nodegraph": 1, "nodes": {
        "i": {"type": "io.LoadImage", "params": {"path": "bad.png"}},
        "s": {"type": "io.SaveImage", "params": {"path": "o.png"}, "inputs": {"image": "i.image"}}}}))
    r = subprocess.run([sys.executable, "-m", "nodegraph.cli", "run", str(p), "--no-cache"],
                       capture_output=True, text=True, env=dict(plugin_env, COLUMNS="400"))
    assert r.returncode == 1
    assert r.stderr.count("cannot read") == 1, r.stderr
    assert "error  i (io.LoadImage): stopped, see below" in r.stderr
