"""graphs/stylegan2_train.json at a tiny width: trains, resumes bit-exactly with the EMA
generator and the lazy R1 objective, and exports the averaged weights (with w_avg)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from nodegraph.graph import load_graph
from nodegraph.train import Trainer, train
from nodegraph.train.ckpt import list_checkpoints

ROOT = Path(__file__).resolve().parents[2]
GRAPH = ROOT / "graphs" / "stylegan2_train.json"
TINY = {"data.size": 32, "data.count": 64, "gen.size": 32, "disc.size": 32, "gen.channel_max": 8,
        "disc.channel_max": 8, "train.batch_size": 4, "train.log_every": 1, "train.sample_every": None,
        "train.samples": [], "train.checkpoint_every": 1000, "train.objectives.Dreg.every": 2,
        "train.objectives.D.optimizer.lazy_every": 2, "train.ema.gen": {"half_life": 40, "rampup": 0.5}}


pytestmark = pytest.mark.usefixtures("one_thread")


def newest(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(list_checkpoints(run_dir)[-1].with_suffix(".safetensors")))


def test_stylegan2_graph_resumes_exactly_and_exports_the_average(tmp_path: Path) -> None:
    g = load_graph(GRAPH).with_overrides({**TINY, "train.steps": 3})
    t = Trainer(g, run_dir=tmp_path / "straight", progress=False)
    result = t.run()
    t.close()
    assert set(t.optims) == {"G", "D"} and t.runner.grad_inputs == {"r1": [("data", "image")]}
    train(g, steps=2, run_dir=tmp_path / "split", export=False, progress=False)
    train(g, run_dir=tmp_path / "split", resume=True, export=False, progress=False)
    a, b = newest(tmp_path / "straight"), newest(tmp_path / "split")
    assert set(a) == set(b)
    for k in a:
        if k.startswith(("param/", "optim/", "ema/")):
            assert torch.equal(a[k], b[k]), k
    exported = load_file(str(result.exported["stylegan2_faces64"]))
    assert "latent_avg" in exported and float(exported["latent_avg"].abs().sum()) > 0
    for k, v in exported.items():
        assert torch.equal(v, a[f"ema/gen/{k}"]), k
    assert result.losses["r1.loss"] > 0 and all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())


@pytest.mark.skipif(importlib.util.find_spec("torch.distributed.run") is None or not dist.is_available(),
                    reason="torchrun (torch.distributed) unavailable")
def test_stylegan2_graph_under_torchrun_resumes_exactly(tmp_path: Path) -> None:
    """Two processes (the engine's data-parallel path, gloo on CPU): EMA, lazy R1 and style mixing
    train, rank 0 alone writes, and 2 + 1 steps resumed equal 3 steps straight, bit for bit."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    sets = [a for k, v in {**TINY, "train.steps": 3}.items() for a in ("--set", f"{k}={json.dumps(v)}")]

    def torchrun(run_dir: Path, *extra: str) -> None:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "nodegraph.train", str(GRAPH), "--run-dir", str(run_dir), "--no-export", *sets, *extra]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    torchrun(tmp_path / "straight", "--log-file", str(tmp_path / "straight.jsonl"))  # not --log: torchrun takes it
    torchrun(tmp_path / "split", "--steps", "2")
    torchrun(tmp_path / "split", "--resume")
    events = [json.loads(line) for line in (tmp_path / "straight.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "train_start" and events[0]["world"] == 2
    assert [e["event"] for e in events].count("step") == 3
    a, b = newest(tmp_path / "straight"), newest(tmp_path / "split")
    assert set(a) == set(b) and any(k.startswith("ema/gen/") for k in a)
    for k in a:
        if k.startswith(("param/", "optim/", "ema/")):
            assert torch.equal(a[k], b[k]), k


def test_fine_tune_export_records_the_architecture_it_built(tmp_path: Path) -> None:
    """A generator initialised from weights with its size / widths left unset (a fine-tune, as
    graphs/fewshot_adapt.json does) exports the resolved architecture as its config, not the
    unset params (the manifest said size None, channel_max 512 and the export did not load by name)."""
    first = train(load_graph(GRAPH).with_overrides({**TINY, "train.steps": 1}), run_dir=tmp_path / "a",
                  progress=False)
    src = first.exported["stylegan2_faces64"]
    tune = load_graph(GRAPH).with_overrides({**TINY, "train.steps": 1, "gen.weights": str(src)})
    raw = tune.spec.model_dump(mode="json")
    for k in ("size", "channel_max", "channel_multiplier"):
        raw["nodes"]["gen"]["params"].pop(k, None)
    from nodegraph.graph import graph_from_dict

    res = train(graph_from_dict(raw, base_dir=GRAPH.parent), run_dir=tmp_path / "b", progress=False)
    out = res.exported["stylegan2_faces64"]
    entry = json.loads((out.parent / "manifest.json").read_text())["weights"]["stylegan2_faces64"]
    params = entry["config"]["params"]
    from nodes.stylegan.net import StyleGANConfig

    def channels(p: dict) -> list:
        return StyleGANConfig(p["size"], channel_multiplier=p["channel_multiplier"],
                              channel_max=p["channel_max"]).channels()
    # the same network as the one trained first (at 32 px with 8 channels cm 1 and 2 coincide)
    assert params["size"] == 32 and channels(params) == channels({"size": 32, "channel_multiplier": 1,
                                                                   "channel_max": 8})


def test_a_frozen_generator_in_a_training_graph_keeps_its_w_avg(tmp_path: Path) -> None:
    """Only the generator being trained tracks w_avg; a frozen one (eval mode, e.g. G_s beside a
    trained G_t) fed z kept drifting its truncation centre (found by the dual-domain helper)."""
    import nodegraph
    from nodegraph.node import Context

    src = train(load_graph(GRAPH).with_overrides({**TINY, "train.steps": 1}), run_dir=tmp_path / "a",
                progress=False).exported["stylegan2_faces64"]
    node = nodegraph.create("stylegan.Generator", weights=str(src), noise="random")
    node.ctx = Context(training=True, node_id="g_s")
    node.ensure_setup()
    node.net.eval()  # what the trainer does to a node no objective updates
    before = node.net.latent_avg.clone()
    node.forward(z=torch.randn(4, 512))
    assert torch.equal(node.net.latent_avg, before)
    node.net.train()
    node.forward(z=torch.randn(4, 512))
    assert not torch.equal(node.net.latent_avg, before)
