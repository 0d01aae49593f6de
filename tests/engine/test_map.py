"""Mapping a graph over many items (nodegraph.map / run --over): per-item errors, resume from the
index, SIGTERM leaving a consistent index, shared prefix computed once, batching equal to
item-by-item.

Mutants watched failing: resume that ignores the recorded sha256 (test_resume_recomputes_edited_output),
an empty prefix, everything per item (test_shared_prefix_runs_once), batch outputs split at the
wrong offset (test_batch_matches_item_by_item)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import nodegraph
from nodegraph.graph import GraphError, graph_from_dict
from nodegraph.mapexec import JobInterrupted
from nodegraph.mapper import MapError, MapJob, map_graph
from nodegraph.runindex import read_records

from . import map_nodes


def make_folder(tmp_path: Path, n: int = 5, bad: int | None = None, sizes: list[int] | None = None) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for i in range(n):
        s = sizes[i] if sizes else 16
        arr = (np.random.RandomState(i).rand(s, s, 3) * 255).astype(np.uint8)
        PILImage.fromarray(arr).save(d / f"im{i}.png")
    if bad is not None:
        (d / f"im{bad}.png").write_bytes(b"this is not a png")
    return d


def graph(tmp_path: Path, **work: object) -> nodegraph.Graph:
    raw = {"nodegraph": 1, "nodes": {
        "img": {"type": "io.LoadImage", "params": {"path": ""}},
        "c": {"type": "ngtest.Const", "params": {"value": 0.2, "size": 16}},
        "w": {"type": "ngmap.Work", "params": {"log": str(tmp_path / "calls.log"), **work},
              "inputs": {"image": "img.image"}},
        "m": {"type": "ngtest.Mean", "inputs": {"image": "w.image"}},
        "save": {"type": "io.SaveImage", "params": {"path": "out/w.png"}, "inputs": {"image": "w.image"}},
        "savec": {"type": "io.SaveImage", "params": {"path": "out/c.png"}, "inputs": {"image": "c.image"}},
    }}
    return graph_from_dict(raw, base_dir=tmp_path)


def computed(tmp_path: Path) -> int:
    log = tmp_path / "calls.log"
    return sum(int(x) for x in log.read_text().split()) if log.exists() else 0


def run_all(g, folder, **kw):
    return list(map_graph(g, {"img.path": str(folder)}, **kw))


def test_bad_item_stops_job_naming_item_and_node(tmp_path):
    folder = make_folder(tmp_path, bad=2)
    with pytest.raises(MapError) as e:
        run_all(graph(tmp_path), folder)
    assert "item 2 (im2)" in str(e.value) and "img.params.path" in str(e.value)
    assert sorted(p.name for p in (tmp_path / "out" / "w").iterdir()) == ["im0.png", "im1.png"]
    recs = read_records(tmp_path / "out" / "graph.index.jsonl")
    assert [r["status"] for r in recs] == ["ok", "ok", "error"]
    assert recs[2]["error"]["where"] == "img.params.path"


def test_keep_going_records_failure_and_rerun_skips_done(tmp_path):
    folder = make_folder(tmp_path, bad=2)
    res = run_all(graph(tmp_path), folder, keep_going=True)
    assert [r.status for r in res] == ["ok", "ok", "error", "ok", "ok"]
    assert res[2].error["node"] == "img" and "im2.png" in res[2].error["message"]
    assert computed(tmp_path) == 4
    assert len(list((tmp_path / "out" / "w").iterdir())) == 4
    index = tmp_path / "out" / "graph.index.jsonl"
    assert [r["index"] for r in read_records(index)] == [0, 1, 2, 3, 4]
    # the re-run skips the four done items and retries the bad one
    res = run_all(graph(tmp_path), folder, keep_going=True)
    assert [r.status for r in res] == ["skipped"] * 4 + ["error"]
    assert computed(tmp_path) == 4
    # fixed: only that item is computed
    PILImage.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "im2.png")
    res = run_all(graph(tmp_path), folder, keep_going=True)
    assert sorted(r.status for r in res) == ["ok"] + ["skipped"] * 4
    assert computed(tmp_path) == 5
    assert [r["status"] for r in read_records(index)] == ["ok"] * 5


def test_resume_recomputes_edited_output(tmp_path):
    folder = make_folder(tmp_path, n=3)
    run_all(graph(tmp_path), folder)
    (tmp_path / "out" / "w" / "im1.png").write_bytes(b"tampered")
    res = run_all(graph(tmp_path), folder)
    assert [r.status for r in res] == ["skipped", "skipped", "ok"]
    assert res[2].index == 1 and computed(tmp_path) == 4
    # another setting of the graph is another job: nothing is skipped
    res = run_all(graph(tmp_path, factor=0.25), folder)
    assert [r.status for r in res] == ["ok"] * 3


def test_sigterm_leaves_consistent_index_and_rerun_finishes(tmp_path):
    folder = make_folder(tmp_path, n=6)
    map_nodes.CALLS["Work"] = 0
    with pytest.raises(JobInterrupted):
        run_all(graph(tmp_path, kill_at=3), folder)
    index = tmp_path / "out" / "graph.index.jsonl"
    lines = index.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(x)["status"] == "ok" for x in lines)
    assert computed(tmp_path) == 3
    res = run_all(graph(tmp_path, kill_at=3), folder)  # the job key ignores nothing: same command
    assert [r.status for r in res] == ["skipped"] * 3 + ["ok"] * 3
    assert computed(tmp_path) == 6
    assert [r["index"] for r in read_records(index)] == list(range(6))


def test_shared_prefix_runs_once(tmp_path):
    from ngtest_plugin import CALLS

    folder = make_folder(tmp_path, n=4)
    raw = {"nodegraph": 1, "nodes": {
        "img": {"type": "io.LoadImage", "params": {"path": ""}},
        "c": {"type": "ngtest.Const", "params": {"value": 0.2, "size": 16}},
        "net": {"type": "ngtest.Net", "inputs": {"image": "c.image"}},
        "mix": {"type": "image.Blend", "inputs": {"a": "img.image", "b": "net.image"}},
        "w": {"type": "ngmap.Work", "inputs": {"image": "mix.image"}},
        "save": {"type": "io.SaveImage", "params": {"path": "out/x.png"}, "inputs": {"image": "w.image"}},
    }}
    g = graph_from_dict(raw, base_dir=tmp_path)
    CALLS.clear()
    job = MapJob(g, [{"img.path": str(p)} for p in sorted(folder.iterdir())])
    assert job.prefix == ["c", "net"] and job.part == ["img", "mix", "w", "save"]
    works = set()
    for r in job.run():
        assert r.status == "ok"
        works.add(id(job._inst["w"][1]))
    assert CALLS["Const"] == 1 and len(works) == 1  # one Work instance serves every item


def test_batch_matches_item_by_item(tmp_path):
    folder = make_folder(tmp_path, n=5, sizes=[16, 16, 24, 16, 16])
    one = {r.index: r.outputs[0]["sha256"] for r in run_all(graph(tmp_path), folder, index=tmp_path / "a.jsonl")}
    (tmp_path / "calls.log").unlink()
    res = run_all(graph(tmp_path), folder, batch=4, index=tmp_path / "b.jsonl", resume=False)
    assert {r.index: r.outputs[0]["sha256"] for r in res} == one
    assert all([Path(o["path"]).stem for o in r.outputs] == [f"im{r.index}"] for r in res)  # its own file only
    # items 0, 1, 3 share a call (16 px); item 2 (24 px) runs alone; item 4 is the next group
    assert sorted(int(x) for x in (tmp_path / "calls.log").read_text().split()) == [1, 1, 3]
    assert all(abs(r.values["m.value"] - res[0].values["m.value"]) < 0.2 for r in res)


def test_over_errors_are_named_before_work(tmp_path):
    folder = make_folder(tmp_path, n=2)
    with pytest.raises(GraphError, match="ngmap.Work has no param 'nope'"):
        list(map_graph(graph(tmp_path), {"w.nope": "[1, 2]"}))
    with pytest.raises(GraphError, match="differ in length"):
        list(map_graph(graph(tmp_path), {"img.path": str(folder), "w.factor": "[0.1, 0.2, 0.3]"}))
    with pytest.raises(GraphError, match="file not found"):
        list(map_graph(graph(tmp_path), {"img.path": [str(folder / "im0.png"), str(folder / "gone.png")]}))
    with pytest.raises(GraphError, match="writes the same file"):
        list(map_graph(graph(tmp_path), {"w.factor": "[0.1, 0.2]", "img.path": [str(folder / "im0.png")] * 2}))


def test_stats_are_mean_and_covariance_over_items(tmp_path):
    from safetensors.torch import load_file

    folder = make_folder(tmp_path, n=5)
    res = run_all(graph(tmp_path), folder, stats=["m.value", "w.image"])
    feats = np.stack([r.results["w"]["image"].flatten().numpy() for r in res]).astype(np.float64)
    got = load_file(str(tmp_path / "out" / "graph.stats.safetensors"))
    assert float(got["w.image.n"]) == 5
    np.testing.assert_allclose(got["w.image.mu"].numpy(), feats.mean(0), atol=1e-9)
    np.testing.assert_allclose(got["w.image.sigma"].numpy(), np.cov(feats, rowvar=False), atol=1e-9)
    vals = np.array([r.values["m.value"] for r in res])
    assert float(got["m.value.mu"][0]) == pytest.approx(vals.mean())
    with pytest.raises(GraphError, match="--stats needs an output of a node that depends on the item"):
        run_all(graph(tmp_path), folder, stats=["c.image"])
