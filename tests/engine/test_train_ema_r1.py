"""Engine features for StyleGAN2-style training, on the tiny conditional GAN: weight EMA
(``train.ema``), gradients with respect to a data input (``requires_grad`` ports, R1), lazy
objectives sharing an optimizer (``"optimizer": "D"``, ``lazy_every``).

Mutants these tests kill (each run by monkeypatching, /tmp plugins): EMA left out of the
checkpoint (2 tests fail); ``lerp`` weight beta instead of 1 - beta (1 fails); R1 without the
[-1, 1] scale factor (2 fail); no leaf for the requires_grad input (3 fail).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import tests.engine.train_helpers  # noqa: F401  (registers ttest.*, toy.*, loss.*, metric.*)
from nodegraph.graph import GraphError, graph_from_dict, load_graph
from nodegraph.node import NodeError
from nodegraph.train import Trainer, train
from nodegraph.train.ckpt import list_checkpoints
from nodegraph.train.ema import EMA
from nodegraph.train.spec import EmaSpec

ROOT = Path(__file__).resolve().parents[2]
CGAN = ROOT / "graphs" / "tiny_cgan_train.json"
TINY = {"data.size": 16, "data.length": 256, "gen.width": 8, "disc.width": 8, "disc.scales": 1,
        "train.batch_size": 8, "train.log_every": 1, "train.sample_every": None, "train.samples": [],
        "train.checkpoint_every": 1000, "train.schedule": {"type": "constant"}}
R1_NODE = {"type": "loss.R1", "params": {"gamma": 2.0}, "inputs": {"real": "disc.real", "image": "data.image"}}


pytestmark = pytest.mark.usefixtures("one_thread")


def graph(ema: dict[str, Any] | None = None, lazy: int | None = None, **extra: Any) -> Any:
    """The tiny cGAN, optionally with an EMA of G and a lazy R1 objective sharing D's Adam."""
    raw = load_graph(CGAN).with_overrides(TINY).spec.model_dump(mode="json")
    if ema is not None:
        raw["train"]["ema"] = ema
    if lazy is not None:
        raw["nodes"]["r1"] = R1_NODE
        raw["train"]["objectives"]["D"]["optimizer"]["lazy_every"] = lazy
        raw["train"]["objectives"]["Dreg"] = {"losses": {"r1.loss": float(lazy)}, "updates": ["disc"],
                                              "optimizer": "D", "every": lazy}
    return graph_from_dict(raw, base_dir=CGAN.parent).with_overrides(extra)


def newest(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(list_checkpoints(run_dir)[-1].with_suffix(".safetensors")))


def test_resume_is_exact_with_ema_and_lazy_r1(tmp_path: Path) -> None:
    g = graph(ema={"gen": {"half_life": 64, "rampup": 0.5}}, lazy=2, **{"train.steps": 6})
    train(g, run_dir=tmp_path / "straight", export=False, progress=False)
    train(g, steps=3, run_dir=tmp_path / "split", export=False, progress=False)
    train(g, run_dir=tmp_path / "split", resume=True, export=False, progress=False)
    a, b = newest(tmp_path / "straight"), newest(tmp_path / "split")
    assert set(a) == set(b) and any(k.startswith("ema/gen/") for k in a)
    for k in a:
        if k.startswith(("param/", "optim/", "ema/")):
            assert torch.equal(a[k], b[k]), k
    # the average is not the live weights (it lags them)
    assert any(not torch.equal(a[k], a["param/" + k[4:]]) for k in a if k.startswith("ema/gen/"))


def test_ema_update_and_half_life() -> None:
    spec = EmaSpec(half_life=100)
    assert spec.beta(10) == pytest.approx(0.5 ** 0.1)
    ramp = EmaSpec(half_life=1000, rampup=0.1)
    assert ramp.beta(10, step=9) == pytest.approx(0.5 ** (10 / 10))  # 100 images seen -> half-life 10
    assert ramp.beta(10, step=10_000) == pytest.approx(0.5 ** (10 / 1000))
    with pytest.raises(ValueError):
        EmaSpec(half_life=10, decay=0.9)
    net = torch.nn.Linear(3, 2)
    net.register_buffer("count", torch.zeros(()))
    ema = EMA({"n": net}, {"n": EmaSpec(decay=0.75)}, batch_size=4)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
        net.count.fill_(5)
    ema.update(0)
    assert torch.allclose(ema.shadow["n"]["weight"], 0.75 * start + 0.25 * (start + 1))
    assert ema.shadow["n"]["count"] == 5  # buffers are copied
    with ema.applied():
        assert torch.allclose(net.weight, 0.75 * start + 0.25 * (start + 1))
    assert torch.equal(net.weight, start + 1)


def test_export_and_samples_use_the_average(tmp_path: Path) -> None:
    g = graph(ema={"gen": {"decay": 0.5}}, **{"train.steps": 3, "train.sample_every": 3,
                                              "train.samples": ["gen.image"],
                                              "train.export_dir": str(tmp_path / "w")})
    t = Trainer(g, run_dir=tmp_path / "run", progress=False)
    calls = t.runner.calls
    result = t.run()
    t.close()
    exported = load_file(str(result.exported["tiny_cgan_G"]))
    ckpt = newest(tmp_path / "run")
    for k, v in exported.items():
        assert torch.equal(v, ckpt[f"ema/gen/{k}"]), k
    live = {k: v for k, v in t.nodes["gen"].net.state_dict().items()}
    assert any(not torch.equal(live[k], exported[k]) for k in exported)  # live weights came back
    assert (tmp_path / "run" / "samples" / "step_00000003.png").is_file()
    assert calls["gen"] == 3 + 1  # one forward per step, and one more with the averaged weights


def test_r1_gradient_wrt_the_data_batch(tmp_path: Path) -> None:
    t = Trainer(graph(lazy=4, **{"train.steps": 1}), run_dir=tmp_path / "run", export=False, progress=False)
    batch = next(t._loaders(0)["data"])
    t.runner.begin_step(batch_dict := {"data": batch})
    vals = t.runner.evaluate({"r1"}, t.grad_sets["Dreg"])
    got = vals["r1"]["loss"]
    assert got.requires_grad  # create_graph: the penalty back-propagates into D
    # by hand: R1 = gamma/2 E ||d D(x') / d x'||^2 with x' = 2x - 1
    disc = t.nodes["disc"].net
    x = batch_dict["data"]["image"].clone().requires_grad_(True)
    labels = batch_dict["data"]["labels"]
    fake = t.runner.step_cache["gen"]["image"]
    out = disc(torch.cat([fake, x]), torch.cat([labels, labels]))
    logits = out[0][-1][fake.shape[0]:]
    (g,) = torch.autograd.grad(logits.sum(), x)
    want = 2.0 / 2 * (g / 2).pow(2).reshape(g.shape[0], -1).sum(1).mean()
    assert torch.allclose(got.detach(), want, rtol=1e-5), (float(got), float(want))
    assert float(want) > 0
    # the penalty moves D: gradient reaches its parameters
    got.backward(inputs=list(disc.parameters()))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters())
    t.close()


def test_lazy_objective_shares_the_optimizer_with_corrected_settings(tmp_path: Path) -> None:
    t = Trainer(graph(lazy=2, **{"train.steps": 4}), run_dir=tmp_path / "run", export=False, progress=False)
    opt = t.optims["D"]
    assert set(t.optims) == {"G", "D"}
    c = 2 / 3
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0004 * c)
    assert opt.param_groups[0]["betas"] == pytest.approx((0.5 ** c, 0.999 ** c))
    t.run()
    t.close()
    steps = {int(s["step"]) for s in opt.state.values()}
    # 4 D steps + the lazy steps at 0 and 2 in one Adam (the logits' bias has no gradient in R1)
    assert max(steps) == 4 + 2 and steps <= {4, 6}
    assert not any(k.startswith("optim/Dreg/") for k in newest(tmp_path / "run"))


def test_train_section_errors_for_ema_and_shared_optimizers() -> None:
    raw = graph(lazy=2).spec.model_dump(mode="json")
    raw["train"]["ema"] = {"data": {"decay": 0.9}}
    raw["train"]["objectives"]["Dreg"]["optimizer"] = "Nope"
    raw["train"]["objectives"]["G"]["optimizer"] = "D"
    with pytest.raises(GraphError) as e:
        Trainer(graph_from_dict(raw, base_dir=CGAN.parent), run_dir="/nonexistent", export=False, progress=False)
    text = str(e.value)
    assert "train.ema.data" in text and "train.objectives.Dreg.optimizer" in text
    assert "train.objectives.G.updates" in text  # G updates gen, D's Adam holds only disc


def test_r1_outside_training_says_what_to_do() -> None:
    from nodes.common.gan_reg import R1Penalty

    node = R1Penalty({"gamma": 1.0})
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(NodeError, match="requires_grad"):
        node(real=torch.zeros(2, 1), image=x)
    xg = x.clone().requires_grad_(True)
    out = node(real=(xg * 3).sum((1, 2, 3))[:, None], image=xg)
    # dD/dx = 3 everywhere -> dD/dx' = 1.5; per image 3*8*8 * 1.5^2 = 432; gamma/2 = 0.5
    assert float(out["loss"]) == pytest.approx(0.5 * 432)


def test_logistic_is_the_non_saturating_loss() -> None:
    from nodes.common.losses import GANLoss

    f, r = torch.randn(4, 1), torch.randn(4, 1)
    d = GANLoss({"mode": "logistic", "role": "d"})(fake=f, real=r)["loss"]
    g = GANLoss({"mode": "logistic", "role": "g"})(fake=f)["loss"]
    sp = torch.nn.functional.softplus
    assert torch.allclose(d, sp(f).mean() + sp(-r).mean()) and torch.allclose(g, sp(-f).mean())


class _Tied(torch.nn.Module):
    """A module whose one weight is registered under two names (tied input/output embeddings)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(3, 3, bias=False)
        self.b = torch.nn.Linear(3, 3, bias=False)
        self.b.weight = self.a.weight
        self.c = torch.nn.Linear(3, 1)  # registered after the tied name: must still be averaged
        self.register_buffer("count", torch.zeros(()))


def test_ema_averages_a_tied_weight_once_under_both_names() -> None:
    """Tied weights: one shadow tensor for both names, lerped once per step (twice would move it
    by 1 - beta^2), and buffers copied; mutmut's survivors on the tied-weight branch die here."""
    torch.manual_seed(0)
    mod = _Tied()
    start = mod.a.weight.detach().clone()
    ema = EMA({"m": mod}, {"m": EmaSpec(decay=0.5)}, batch_size=1)
    sd = ema.shadow["m"]
    assert sd["a.weight"] is sd["b.weight"]
    with torch.no_grad():
        mod.a.weight.add_(1.0)
        mod.count.fill_(7)
    ema.update(0)
    assert torch.allclose(sd["a.weight"], start + 0.5)  # once: 0.5 of the way, not 0.75
    assert float(sd["count"]) == 7.0
    state = ema.state()
    assert set(state) == {"ema/m/a.weight", "ema/m/b.weight", "ema/m/c.weight", "ema/m/c.bias", "ema/m/count"}
    assert torch.equal(state["ema/m/a.weight"], state["ema/m/b.weight"])
