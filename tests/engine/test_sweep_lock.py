"""Sweeps declared in a graph (table, contact sheet, shared work between variants) and run
lockfiles with replay (bit-identical outputs; a changed input is named as the fact that differs).

Mutants watched failing: the sweep memo keyed without the upstream keys (a variant served another's
result: test_sweep_product_table_sheet_and_sharing checks each variant's value), replay calling
every existing file identical (test_replay_names_changed_input)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from nodegraph.graph import GraphError, graph_from_dict
from nodegraph.lock import read_lock
from nodegraph.mapper import map_graph
from nodegraph.replay import replay
from nodegraph.sweep import parse_sweep, run_sweep

from . import map_nodes  # noqa: F401  (registers ngmap.Work)


def chain(tmp_path: Path) -> dict:
    PILImage.fromarray((np.random.RandomState(0).rand(16, 16, 3) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    return {"nodegraph": 1, "nodes": {
        "img": {"type": "io.LoadImage", "params": {"path": "in.png"}},
        "a": {"type": "ngmap.Work", "params": {"factor": 0.5, "log": str(tmp_path / "a.log")},
              "inputs": {"image": "img.image"}},
        "b": {"type": "ngtest.Scale", "params": {"factor": 1.0}, "inputs": {"image": "a.image"}},
        "m": {"type": "ngtest.Mean", "inputs": {"image": "b.image"}},
        "save": {"type": "io.SaveImage", "params": {"path": "out/b.png"}, "inputs": {"image": "b.image"}},
    }}


def test_sweep_product_table_sheet_and_sharing(tmp_path):
    g = graph_from_dict(chain(tmp_path), base_dir=tmp_path)
    sweep = parse_sweep({"a.factor": [0.5, 1.0], "b.factor": [1.0, 1.5, 2.0], "mode": "product"})
    out = run_sweep(g, sweep)
    rows = list(csv.DictReader(out["csv"].open()))
    assert [(float(r["a.factor"]), float(r["b.factor"])) for r in rows] == \
        [(a, b) for a in (0.5, 1.0) for b in (1.0, 1.5, 2.0)]
    x = np.asarray(PILImage.open(tmp_path / "in.png"), np.float64) / 255
    for r in rows:  # each variant's value is its own: a * b on the picture, clamped at each step
        a, b = float(r["a.factor"]), float(r["b.factor"])
        assert float(r["m.value"]) == pytest.approx(np.clip(np.clip(x * a, 0, 1) * b, 0, 1).mean(), abs=1e-5)
    assert "| a.factor | b.factor | m.value |" in out["md"].read_text()
    assert (tmp_path / "a.log").read_text().split() == ["1", "1"]  # a ran once per a.factor, not 6 times
    sheet = PILImage.open(out["sheet"])
    assert sheet.size[0] > 3 * 16 and sheet.size[1] > 2 * 16
    assert len(list((tmp_path / "out" / "b_sweep").iterdir())) == 6


def test_sweep_section_errors_are_named(tmp_path):
    with pytest.raises(GraphError) as e:
        parse_sweep({"a.factor": [], "mode": "diagonal", "colour": 1, "b.factor": 3})
    msg = str(e.value)
    for part in ("sweep.a.factor: must be a non-empty list", "sweep.mode: must be 'zip' or 'product'",
                 "sweep.colour: unknown setting", "sweep.b.factor: must be a non-empty list"):
        assert part in msg
    with pytest.raises(GraphError, match="zip needs lists of equal length"):
        parse_sweep({"a.factor": [1, 2], "b.factor": [1], "mode": "zip"})
    g = graph_from_dict(chain(tmp_path), base_dir=tmp_path)
    with pytest.raises(GraphError, match="sweep.b.nope.*has no param 'nope'"):
        run_sweep(g, parse_sweep({"b.nope": [1, 2]}))
    with pytest.raises(GraphError, match=r"(?s)sweep: 1 problem.*item 1 \(b.factor=20\): "
                                         r"b.params.factor: Input should be less than or equal to 10"):
        run_sweep(g, parse_sweep({"b.factor": [1, 20]}))


def test_map_lock_replays_bit_identical(tmp_path):
    g = graph_from_dict(chain(tmp_path), base_dir=tmp_path)
    files = []
    for i in range(3):
        p = tmp_path / f"x{i}.png"
        PILImage.fromarray((np.random.RandomState(i + 5).rand(16, 16, 3) * 255).astype(np.uint8)).save(p)
        files.append(str(p))
    list(map_graph(g, {"img.path": files}))
    lock = read_lock(tmp_path / "out" / "graph.lock.json")
    assert lock["kind"] == "map" and len(lock["items"]) == 3 and len(lock["outputs"]["files"]) == 3
    assert lock["items"][1]["inputs"]["img.path"]["sha256"]
    assert lock["versions"]["torch"] and lock["device"]["device"] == "cpu"
    rep = replay(tmp_path / "out" / "graph.lock.json", out_dir=tmp_path / "re")
    assert rep.identical and not rep.facts, (rep.rows, rep.facts)
    assert {r["status"] for r in rep.rows} == {"identical"} and len(rep.rows) == 6  # 3 files + 3 values


def test_replay_names_changed_input(tmp_path):
    g = graph_from_dict(chain(tmp_path), base_dir=tmp_path)
    p = tmp_path / "x.png"
    PILImage.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(p)
    list(map_graph(g, {"img.path": [str(p)]}))
    PILImage.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(p)
    rep = replay(tmp_path / "out" / "graph.lock.json", out_dir=tmp_path / "re")
    assert not rep.identical
    row = next(r for r in rep.rows if r["name"].endswith("x.png"))
    assert row["status"] == "differs" and row["max_diff"] == pytest.approx(10 / 255, abs=1.5 / 255)
    assert any("item 0 img.path" in f and "contents changed" in f for f in rep.facts)


def test_training_writes_lock_that_replay_compares(tmp_path):
    from nodegraph.graph import load_graph
    from nodegraph.train import train

    root = Path(__file__).resolve().parents[2]
    g = load_graph(root / "graphs" / "tiny_cgan_train.json").with_overrides(
        {"data.size": 16, "data.length": 16, "gen.width": 8, "disc.width": 8, "disc.scales": 1, "train.batch_size": 4,
         "train.sample_every": None, "train.samples": [], "train.checkpoint_every": 1000})
    train(g, steps=1, run_dir=tmp_path / "run", progress=False, export=False)
    lock = read_lock(tmp_path / "run" / "run.lock.json")
    assert lock["kind"] == "train" and lock["command"]["steps"] == 1 and lock["seeds"]["train.seed"] == 0
    assert lock["graph"]["file_sha256"] and lock["versions"]["torch"]
    rep = replay(tmp_path / "run" / "run.lock.json")
    assert rep.kind == "train" and rep.identical and not rep.facts
