"""loss.PathLength (StyleGAN2 path-length regulariser) against an independent reference written
from the paper's definition with an explicit Jacobian, and inside graphs/stylegan2_train.json as a
lazy objective (trains, keeps its running mean in the checkpoint, resumes bit-exactly).

Mutants these tests kill (each tried by editing nodes/common/gan_reg.py): the old mean in the
penalty instead of the updated one; sum instead of mean over layers; no 1/sqrt(HW) on y; the
running mean not saved by ``train_state`` (the resume test fails: the split run restarts a at 0).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from nodegraph.graph import graph_from_dict, load_graph
from nodegraph.node import NodeError
from nodegraph.train import Trainer, train
from nodegraph.train.ckpt import list_checkpoints
from nodes.common.gan_reg import PathLengthPenalty
from tests.stylegan.test_train_graph import TINY

ROOT = Path(__file__).resolve().parents[2]
GRAPH = ROOT / "graphs" / "stylegan2_train.json"


pytestmark = pytest.mark.usefixtures("one_thread")


def _toy_generator(seed: int = 0):
    """g: B x L x D -> B x 3 x H x W, a fixed nonlinear map (tanh of a per-layer linear image)."""
    gen = torch.Generator().manual_seed(seed)
    L, D, H, W = 4, 6, 5, 7
    A = torch.randn(L, D, 3 * H * W, generator=gen, dtype=torch.float64) * 0.3

    def g(w: torch.Tensor) -> torch.Tensor:
        return torch.tanh(torch.einsum("bld,ldp->bp", w, A)).reshape(w.shape[0], 3, H, W)
    return g, (L, D, H, W)


def _reference(g, w: torch.Tensor, y: torch.Tensor, a: float, decay: float) -> tuple[float, float]:
    """Paper eq. 4 with an explicit Jacobian: a_i = sqrt(mean_l ||(J_i^T y_i)_l||^2), then
    a' = a + decay (mean a_i - a) and penalty = mean (a_i - a')^2. Returns (penalty, a')."""
    lengths = []
    for i in range(w.shape[0]):
        J = torch.autograd.functional.jacobian(lambda v: g(v[None])[0].reshape(-1), w[i])  # P x L x D
        jty = torch.einsum("p,pld->ld", y[i].reshape(-1), J)
        lengths.append(math.sqrt(float(jty.pow(2).sum(1).mean())))
    new = a + decay * (sum(lengths) / len(lengths) - a)
    return sum((x - new) ** 2 for x in lengths) / len(lengths), new


def test_matches_the_definition_over_several_calls() -> None:
    g, (L, D, H, W) = _toy_generator()
    node = PathLengthPenalty({"weight": 2.0, "decay": 0.3})
    node.ensure_setup()
    a = 0.0
    for step in range(3):
        w = torch.randn(3, L, D, generator=torch.Generator().manual_seed(10 + step), dtype=torch.float64)
        w.requires_grad_(True)
        raw = g(w)
        torch.manual_seed(step)
        out = node.forward(raw=raw, wplus=w)
        torch.manual_seed(step)
        y = torch.randn(raw.shape, dtype=raw.dtype) / math.sqrt(H * W)
        want, a = _reference(g, w.detach(), y, a, 0.3)
        assert float(out["penalty"]) == pytest.approx(want, rel=1e-5)
        assert float(out["loss"]) == pytest.approx(2.0 * want, rel=1e-5)
        assert float(node.train_state()["mean_length"]) == pytest.approx(a, rel=1e-5)
    out["loss"].backward()  # differentiable into the codes (and so into the generator)
    assert w.grad is not None and float(w.grad.abs().sum()) > 0


def test_needs_the_graph_from_wplus() -> None:
    node = PathLengthPenalty()
    node.ensure_setup()
    with pytest.raises(NodeError, match="gen.wplus"):
        node.forward(raw=torch.rand(1, 3, 4, 4), wplus=torch.rand(1, 2, 3))


def _with_path_length(extra: dict[str, Any]) -> Any:
    g = load_graph(GRAPH).with_overrides({**TINY, **extra})
    raw = g.spec.model_dump(mode="json")
    raw["nodes"]["pl"] = {"type": "loss.PathLength", "params": {"weight": 2.0},
                          "inputs": {"raw": "gen.raw", "wplus": "gen.wplus"}}
    raw["train"]["objectives"]["Greg"] = {"losses": {"pl.loss": 2.0}, "updates": ["gen"], "optimizer": "G",
                                          "every": 2}
    raw["train"]["objectives"]["G"]["optimizer"]["lazy_every"] = 2
    return graph_from_dict(raw, base_dir=GRAPH.parent)


def newest(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(list_checkpoints(run_dir)[-1].with_suffix(".safetensors")))


def test_lazy_path_length_objective_trains_and_resumes_exactly(tmp_path: Path) -> None:
    g = _with_path_length({"train.steps": 4})
    t = Trainer(g, run_dir=tmp_path / "straight", progress=False, export=False)
    result = t.run()
    t.close()
    assert result.losses["pl.loss"] > 0 and math.isfinite(result.losses["pl.loss"])
    train(g, steps=3, run_dir=tmp_path / "split", export=False, progress=False)
    train(g, run_dir=tmp_path / "split", resume=True, export=False, progress=False)
    a, b = newest(tmp_path / "straight"), newest(tmp_path / "split")
    assert "state/pl/mean_length" in a and float(a["state/pl/mean_length"]) > 0
    assert set(a) == set(b)
    for k in a:
        if k.startswith(("param/", "optim/", "ema/", "state/")):
            assert torch.equal(a[k], b[k]), k
