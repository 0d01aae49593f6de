"""The losses graphs/mask_guided.json actually trains with (thesis eqs 3.1-3.6), on logits and
features that are not degenerate: all-zero logits cost ln 2 whatever the target, so they cannot
tell a right target from a wrong one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import nodegraph
from nodes.portrait.net import PARTS

ROOT = Path(__file__).resolve().parents[2]
GRAPH = json.loads((ROOT / "graphs" / "mask_guided.json").read_text())
NODES, G = GRAPH["nodes"], GRAPH["train"]["objectives"]["G"]
D = GRAPH["train"]["objectives"]["D"]


def _node(nid: str):
    return nodegraph.create(NODES[nid]["type"], **NODES[nid].get("params", {}))


def _scales(*logits: list[float]) -> list[list[torch.Tensor]]:
    """A 2-scale D output: per scale, [feature, logits] with the given logit values."""
    return [[torch.zeros(1, 4, 2, 2), torch.tensor(v).view(1, 1, 1, -1)] for v in logits]


REAL = _scales([2.0, 0.5, -1.0], [1.5, 3.0, 0.2])
FAKE = _scales([-2.0, 0.3, 1.0], [-0.5, -3.0, 0.7])


def _bce(outs: list[list[torch.Tensor]], target: float) -> torch.Tensor:
    per = [F.binary_cross_entropy_with_logits(s[-1], torch.full_like(s[-1], target)) for s in outs]
    return torch.stack(per).mean()


@pytest.mark.parametrize("nid", ["d_pair_l", "d_unpair_l"])
def test_discriminator_losses_target_real_1_fake_0(nid):
    """Eq 3.3: real -> 1, fake -> 0, BCE on raw logits, averaged over scales.
    Mutants: real/fake targets swapped; a sigmoid before BCE-with-logits; one scale only."""
    out = _node(nid)(fake=FAKE, real=REAL)
    assert float(out["loss_real"]) == pytest.approx(float(_bce(REAL, 1.0)), rel=1e-5)
    assert float(out["loss_fake"]) == pytest.approx(float(_bce(FAKE, 0.0)), rel=1e-5)
    assert D["losses"][f"{nid}.loss"] > 0


@pytest.mark.parametrize("nid", ["g_pair", "g_unpair"])
def test_generator_losses_target_1(nid):
    """Eq 3.4, non-saturating: -log D(G(.)), i.e. target 1 on the fake logits.
    Mutant: target 0 in G (the generator would learn to look fake)."""
    out = _node(nid)(fake=FAKE)
    assert float(out["loss"]) == pytest.approx(float(_bce(FAKE, 1.0)), rel=1e-5)
    assert float(out["loss"]) != pytest.approx(float(_bce(FAKE, 0.0)), rel=1e-3)
    assert G["losses"][f"{nid}.loss"] > 0


def test_feature_matching_uses_every_layer_of_every_scale():
    """Eq 3.5 over all intermediate layers: a difference in any one layer of any scale counts.
    Mutants: the first layer only; the first scale only; the logits matched as a feature."""
    torch.manual_seed(0)
    real = [[torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4), torch.randn(1, 1, 4, 4)] for _ in range(2)]
    fm = _node("g_fm")
    assert float(fm(fake=real, real=real)["loss"]) == 0.0
    for scale in range(2):
        for layer in range(2):
            fake = [[t.clone() for t in s] for s in real]
            fake[scale][layer] += 1.0
            assert float(fm(fake=fake, real=real)["loss"]) > 0.1, (scale, layer)
    fake = [[t.clone() for t in s] for s in real]
    fake[1][-1] += 5.0  # logits are not a feature to match
    assert float(fm(fake=fake, real=real)["loss"]) == 0.0
    assert G["losses"]["g_fm.loss"] > 0


def test_local_reconstruction_covers_all_five_components():
    """Eq 3.1 for every component: one loss per part, comparing that part's reconstruction with
    that part's crop, each with the same weight in G. Mutant: the first component only (the other
    losses dropped, weighted 0, or wired to the first component's crop)."""
    seen = {}
    for nid, spec in NODES.items():
        a, b = spec.get("inputs", {}).get("a", ""), spec.get("inputs", {}).get("b", "")
        if spec["type"] == "loss.MSE" and a.startswith("local.rec_"):
            part = a.removeprefix("local.rec_")
            assert b == f"src.{part}", f"{nid} compares rec_{part} with {b}"
            seen[part] = G["losses"].get(f"{nid}.loss", 0)
    assert set(seen) == set(PARTS)
    assert len(set(seen.values())) == 1 and next(iter(seen.values())) > 0
