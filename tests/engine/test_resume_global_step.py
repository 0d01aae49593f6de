"""Resuming is exact past the points where a shorter test would not look: after a learning-rate
decay has started, and with a node that draws random numbers every step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import Field

import tests.engine.train_helpers  # noqa: F401  (registers toy.*, loss.*, metric.*)
from nodegraph.graph import graph_from_dict
from nodegraph.node import Node, Params
from nodegraph.registry import register
from nodegraph.train import train
from nodegraph.train.ckpt import list_checkpoints
from nodegraph.types import Image

ROOT = Path(__file__).resolve().parents[2]
CGAN = ROOT / "graphs" / "tiny_cgan_train.json"
TINY = {"data.size": 16, "data.length": 256, "gen.width": 8, "disc.width": 8, "disc.scales": 1,
        "train.batch_size": 8, "train.log_every": 1, "train.sample_every": None, "train.samples": [],
        "train.checkpoint_every": 1000}


@register("ttest.Noise")
class Noise(Node):
    """image + sigma * N(0, 1), drawn from torch's global generator (which the trainer seeds from
    the global step): a stand-in for dropout, noise injection, random crops."""

    class Params(Params):
        sigma: float = Field(0.1, ge=0)

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        return {"image": (image + self.params.sigma * torch.randn_like(image)).clamp(0, 1)}


pytestmark = pytest.mark.usefixtures("one_thread")


def cgan(noise: bool, **extra: Any):
    raw = json.loads(CGAN.read_text())
    if noise:  # the L1 target is a noisy copy of the real image, redrawn each step
        raw["nodes"]["noisy"] = {"type": "ttest.Noise", "inputs": {"image": "data.image"}}
        raw["nodes"]["g_l1"]["inputs"]["b"] = "noisy.image"
    return graph_from_dict(raw, base_dir=CGAN.parent).with_overrides({**TINY, **extra})


def final(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(list_checkpoints(run_dir)[-1].with_suffix(".safetensors")))


def straight_vs_split(g: Any, tmp_path: Path, split: int) -> None:
    train(g, run_dir=tmp_path / "straight", export=False, progress=False, log=tmp_path / "straight.jsonl")
    train(g, steps=split, run_dir=tmp_path / "split", export=False, progress=False)
    train(g, run_dir=tmp_path / "split", resume=True, export=False, progress=False, log=tmp_path / "split.jsonl")
    a, b = final(tmp_path / "straight"), final(tmp_path / "split")
    for k in a:
        if k.startswith(("param/", "optim/")):
            assert torch.equal(a[k], b[k]), k


def lrs(log: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    return {r["step"]: r["lr"]["G"] for r in rows if r["event"] == "step"}


def test_resume_after_the_decay_started_is_exact(tmp_path: Path) -> None:
    """8 steps, linear decay from step 5, split at 6: the resumed steps must use the decayed rate
    of the *global* step. Mutant killed: ``factor(step - start, ...)`` in ``Trainer._update``
    (the resumed run would restart at full rate and end with other weights)."""
    g = cgan(False, **{"train.steps": 8, "train.schedule": {"type": "linear", "start": 5}})
    straight_vs_split(g, tmp_path, 6)
    a, b = lrs(tmp_path / "straight.jsonl"), lrs(tmp_path / "split.jsonl")
    assert a[8] < a[7] < a[6] and b[7] == a[7] and b[8] == a[8]  # log step s = after 0-based step s-1


def test_resume_with_a_random_node_is_exact(tmp_path: Path) -> None:
    """A node drawing random numbers every step, split at 3 of 6: the per-step seed must come from
    the global step. Mutant killed: ``derive_seed("step", seed, step - start, rank)`` in
    ``Trainer._step`` (the resumed run would replay steps 0.. noise)."""
    g = cgan(True, **{"train.steps": 6, "train.schedule": {"type": "constant"}})
    straight_vs_split(g, tmp_path, 3)
