"""dualdomain.* nodes: crossover values and errors, LatentOptimize's contract (tiny 32 px generator,
EfficientNet-Lite0 at 32 px, a few steps). Mutants seen to fail here: crossover B without the
complement (values test); the empty-mask side dividing by the mask area (NaN test); the layer-count
check dropped (error test)."""

from __future__ import annotations

import pytest
import torch

import nodegraph
from nodegraph.node import Context, NodeError
from nodes.stylegan.net import Generator, StyleGANConfig


def _node(type_name, **params):
    events = []
    node = nodegraph.create(type_name, **params)
    node.ctx = Context(emit=lambda ev, **kw: events.append((ev, kw)), node_id="dd")
    node.setup()
    return node, events


def test_crossover_directions_and_complement():
    x_s, x_t = torch.full((1, 3, 4, 4), 0.2), torch.full((1, 3, 4, 4), 0.7)
    y_s = torch.zeros(1, 1, 4, 4)
    y_s[..., :2, :] = 1
    y_t = torch.zeros(1, 1, 4, 4)
    y_t[..., :, :2] = 1
    out = {d: _node("dualdomain.Crossover", direction=d)[0].forward(x_s, y_s, x_t, y_t)["image"]
           for d in ("A", "B", "paper")}
    s, t = x_s * 2 - 1, x_t * 2 - 1  # built on the official [-1, 1] scale
    torch.testing.assert_close(out["A"], (s * (1 - y_s) + t * y_t + 1) / 2)
    torch.testing.assert_close(out["B"], (s * y_s + t * (1 - y_t) + 1) / 2)
    torch.testing.assert_close(out["paper"], ((s * y_s + t * y_t + 1) / 2).clamp(0, 1))
    assert out["B"][0, 0, 3, 3] == pytest.approx(0.7) and out["B"][0, 0, 0, 0] == pytest.approx(0.2)
    assert out["B"][0, 0, 3, 0] == pytest.approx(0.5)  # covered by neither y_s nor 1 - y_t: grey
    assert out["B"][0, 0, 0, 3] == pytest.approx(0.4)  # covered by both: -0.6 + 0.4 on [-1, 1]


def test_crossover_mask_of_another_size_names_port():
    node, _ = _node("dualdomain.Crossover")
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(NodeError, match="target_mask") as e:
        node.forward(x, torch.ones(1, 1, 8, 8), x, torch.ones(1, 1, 4, 4))
    assert "dd.inputs.target_mask" in str(e.value.__dict__) or "target_mask" in str(e.value)


@pytest.fixture(scope="module")
def gens():
    torch.manual_seed(0)
    cfg = StyleGANConfig(32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=16)
    g1, g2 = Generator(cfg).eval(), Generator(cfg).eval()
    g3 = Generator(StyleGANConfig(16, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=16)).eval()
    with torch.no_grad():
        w = g1.mean_latent(100).view(1, 1, -1).repeat(1, g1.n_latent, 1)
        x_s, x_t = (((g(w) + 1) / 2).clamp(0, 1) for g in (g1, g2))
    return g1, g2, g3, x_s, x_t


def _masks():
    y = torch.zeros(1, 1, 32, 32)
    y[..., 10:22, 8:24] = 1
    return y, y.roll(2, -1)


def test_latent_optimize_runs_lowers_loss_and_reports(gens):
    g1, g2, _, x_s, x_t = gens
    y_s, y_t = _masks()
    node, events = _node("dualdomain.LatentOptimize", style_dim=32, iterations=4, every=2, n_mean=200,
                         perceptual_size=32)
    out = node.forward(g1, x_s, y_s, x_t, y_t, target_generator=g2)
    assert out["wplus"].shape == (1, g1.n_latent, 32) and out["image"].shape == (1, 3, 32, 32)
    assert out["terms"].shape == (4, 5) and out["snapshots"].shape == (2, 1, g1.n_latent, 32)
    assert torch.isfinite(out["loss"]).all() and out["loss"][-1] < out["loss"][0]
    xover = _node("dualdomain.Crossover", direction="A")[0].forward(x_s, y_s, x_t, y_t)["image"]
    torch.testing.assert_close(out["crossover"], xover)
    assert sum(1 for ev, _ in events if ev == "progress") == 4
    assert all(p.grad is None for p in g1.parameters())


def test_empty_mask_gives_zero_terms_not_nan(gens):
    g1, _, _, x_s, x_t = gens
    empty = torch.zeros(1, 1, 32, 32)
    node, _ = _node("dualdomain.LatentOptimize", style_dim=32, iterations=2, every=0, n_mean=50, perceptual_size=32)
    out = node.forward(g1, x_s, empty, x_t, empty)
    assert torch.isfinite(out["terms"]).all() and torch.isfinite(out["image"]).all()
    assert (out["terms"][:, 1] == 0).all() and (out["terms"][:, 3] == 0).all()  # target side, inside y_s
    assert out["snapshots"].shape[0] == 0


def test_target_generator_with_other_layer_count_names_port(gens):
    g1, _, g3, x_s, x_t = gens
    y_s, y_t = _masks()
    node, _ = _node("dualdomain.LatentOptimize", style_dim=32, iterations=1, perceptual_size=32)
    with pytest.raises(NodeError, match="target generator takes") as e:
        node.forward(g1, x_s, y_s, x_t, y_t, target_generator=g3)
    assert "target_generator" in str(e.value) or "target_generator" in repr(e.value.__dict__)
    with pytest.raises(NodeError, match="target_generator input"):
        _node("dualdomain.LatentOptimize", style_dim=32, generator="target")[0].forward(g1, x_s, y_s, x_t, y_t)


def test_target_generator_makes_x_hat_and_vgg16_without_weights_is_explained(gens, monkeypatch, tmp_path):
    g1, g2, _, x_s, x_t = gens
    y_s, y_t = _masks()
    kw = {"style_dim": 32, "iterations": 1, "every": 0, "n_mean": 50, "perceptual_size": 32}
    out = _node("dualdomain.LatentOptimize", generator="target", **kw)[0].forward(g1, x_s, y_s, x_t, y_t,
                                                                                  target_generator=g2)
    with torch.no_grad():
        w0 = g2.mean_latent(50, torch.Generator().manual_seed(0)).view(1, 1, -1).repeat(1, g2.n_latent, 1)
    assert (out["wplus"] - w0).abs().max() <= 0.0100001  # one Adam step from G2's mean code
    monkeypatch.setenv("NODEGRAPH_WEIGHTS", str(tmp_path))
    with pytest.raises(NodeError, match="nodegraph convert vgg16"):
        _node("dualdomain.LatentOptimize", backbone="vgg16", **kw)[0].forward(g1, x_s, y_s, x_t, y_t)


def test_backbone_built_once_and_targets_features_once_per_pass(gens, monkeypatch):
    """Mutants run: ``_backbone`` without its cache (2 builds, not 1); ``PassLoss`` sending x_hat
    through the backbone once per term (11 calls, not 5). The mean code is also drawn once."""
    g1, _, _, x_s, x_t = gens
    y_s, y_t = _masks()
    node, _ = _node("dualdomain.LatentOptimize", style_dim=32, iterations=3, every=0, n_mean=50,
                    perceptual_size=32)
    builds, calls = [], []
    build = type(node)._build_backbone

    def counting_build(self):
        net = build(self)
        builds.append(1)
        forward = net.forward
        net.forward = lambda x: calls.append(1) or forward(x)
        return net

    import nodes.dualdomain.nodes as dd

    means, mean_code = [], dd.mean_code
    monkeypatch.setattr(type(node), "_build_backbone", counting_build)
    monkeypatch.setattr(dd, "mean_code", lambda *a: means.append(1) or mean_code(*a))
    first = node.forward(g1, x_s, y_s, x_t, y_t)
    assert len(calls) == 2 + 3  # the two targets once, x_hat once per step
    second = node.forward(g1, x_s, y_s, x_t, y_t)
    assert len(builds) == 1 and len(calls) == 2 * (2 + 3) and len(means) == 1
    torch.testing.assert_close(first["wplus"], second["wplus"])


@pytest.mark.parametrize("pass_name", ["D1", "D2"])
def test_full_mask_gives_zero_terms_and_other_size_mask_names_port(gens, pass_name):
    """y_s = y_t = 1: the complement sides are empty, their terms exactly 0 (no NaN); a mask of
    another size is refused before any step, naming the port."""
    g1, _, _, x_s, x_t = gens
    full = torch.ones(1, 1, 32, 32)
    node, events = _node("dualdomain.LatentOptimize", style_dim=32, iterations=2, every=0, n_mean=50,
                         perceptual_size=32, pass_name=pass_name)
    out = node.forward(g1, x_s, full, x_t, full)
    assert torch.isfinite(out["terms"]).all() and torch.isfinite(out["image"]).all()
    empty_side = (0, 2) if pass_name == "D1" else (1, 3)  # D1: 1 - y_s (source); D2: 1 - y_t (target)
    assert (out["terms"][:, list(empty_side)] == 0).all()
    assert (out["terms"][:, [i for i in range(4) if i not in empty_side]] > 0).all()
    n_progress = sum(1 for ev, _ in events if ev == "progress")
    with pytest.raises(NodeError, match="every image and mask must be the same size") as e:
        node.forward(g1, x_s, full, x_t, torch.ones(1, 1, 16, 16))
    assert e.value.where == "dd.inputs.target_mask"
    assert sum(1 for ev, _ in events if ev == "progress") == n_progress  # refused before any step
