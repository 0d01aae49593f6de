"""Loss nodes: values against their formulas, multi-scale handling, where gradients go."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import nodes.common.losses as L
from nodegraph.node import NodeError


def gan(mode: str, role: str) -> L.GANLoss:
    return L.GANLoss({"mode": mode, "role": role})


def test_hinge() -> None:
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    out = gan("hinge", "d")(fake=fake, real=real)
    assert float(out["loss_real"]) == pytest.approx((0 + 0.5) / 2)
    assert float(out["loss_fake"]) == pytest.approx((0 + 1.0) / 2)
    assert float(out["loss"]) == pytest.approx(0.75)
    assert float(gan("hinge", "g")(fake=fake)["loss"]) == pytest.approx(1.0)


def test_least_squares() -> None:
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.5, 1.0])
    d = gan("ls", "d")(fake=fake, real=real)
    assert float(d["loss_real"]) == pytest.approx(0.5)
    assert float(d["loss_fake"]) == pytest.approx((0.25 + 1.0) / 2)
    assert float(gan("ls", "g")(fake=fake)["loss"]) == pytest.approx((0.25 + 0.0) / 2)


def test_bce_non_saturating() -> None:
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    d = gan("bce", "d")(fake=fake, real=real)
    want = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    assert torch.allclose(d["loss"], want, atol=1e-6)
    g = gan("bce", "g")(fake=fake)["loss"]
    assert torch.allclose(g, F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)), atol=1e-6)


def test_multiscale_feature_lists_use_last_item_and_average_scales() -> None:
    s1 = [torch.randn(2, 4, 4, 4), torch.full((2, 1, 4, 4), 3.0)]
    s2 = [torch.randn(2, 4, 2, 2), torch.full((2, 1, 2, 2), 1.0)]
    out = gan("hinge", "g")(fake=[s1, s2])["loss"]
    assert float(out) == pytest.approx(-(3.0 + 1.0) / 2)
    flat = gan("hinge", "g")(fake=[s1[-1], s2[-1]])["loss"]
    assert torch.equal(out, flat)


def test_d_form_needs_real() -> None:
    with pytest.raises(NodeError, match="real"):
        gan("hinge", "d")(fake=torch.zeros(2))


def test_feature_matching_detaches_real() -> None:
    real = [[torch.ones(1, 2, 4, 4, requires_grad=True), torch.zeros(1, 1, 4, 4)]] * 2
    fake_feat = torch.zeros(1, 2, 4, 4, requires_grad=True)
    fake = [[fake_feat, torch.zeros(1, 1, 4, 4)]] * 2
    loss = L.FeatureMatchingLoss()(fake=fake, real=real)["loss"]
    assert float(loss.detach()) == pytest.approx(1.0)  # |0 - 1| per scale, averaged over 2 scales
    loss.backward()
    assert real[0][0].grad is None and fake_feat.grad is not None
    same = L.FeatureMatchingLoss()(fake=real, real=real)["loss"]
    assert float(same.detach()) == 0.0


def test_feature_matching_needs_features() -> None:
    with pytest.raises(NodeError, match="intermediate features"):
        L.FeatureMatchingLoss()(fake=torch.zeros(1, 1, 2, 2), real=torch.zeros(1, 1, 2, 2))


def test_l1_mse_with_mask() -> None:
    a, b = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    b[..., 0, 0] = 3.0
    mask = torch.zeros(1, 1, 2, 2)
    mask[..., 0, 0] = 1.0
    assert float(L.L1Loss()(a=a, b=b)["loss"]) == pytest.approx((3 + 1 + 1 + 1) / 4)
    assert float(L.L1Loss()(a=a, b=b, mask=mask)["loss"]) == pytest.approx(3.0)
    assert float(L.MSELoss()(a=a, b=b, mask=mask)["loss"]) == pytest.approx(9.0)
    assert float(L.MSELoss({"reduction": "sum"})(a=a, b=b)["loss"]) == pytest.approx(3 * (9 + 3))


def test_kl_matches_torch_distributions() -> None:
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    want = torch.distributions.kl_divergence(q, p).sum() / 3
    assert torch.allclose(L.KLLoss()(mu=mu, logvar=logvar)["loss"], want, atol=1e-5)
    assert float(L.KLLoss()(mu=torch.zeros(2, 4), logvar=torch.zeros(2, 4))["loss"]) == 0.0
    assert torch.allclose(L.KLLoss({"reduction": "sum"})(mu=mu, logvar=logvar)["loss"], want * 3, atol=1e-4)


def test_cross_entropy_and_resize() -> None:
    logits, target = torch.randn(2, 4, 8, 8), torch.randint(0, 4, (2, 8, 8))
    target[0, 0, 0] = 255
    got = L.CrossEntropyLoss({"ignore_index": 255})(logits=logits, target=target)["loss"]
    assert torch.allclose(got, F.cross_entropy(logits, target, ignore_index=255))
    small = L.CrossEntropyLoss({"ignore_index": 255})(logits=logits[..., ::2, ::2], target=target)["loss"]
    assert torch.isfinite(small)
    with pytest.raises(NodeError, match="class_weights"):
        L.CrossEntropyLoss({"class_weights": [1.0, 2.0]})(logits=logits, target=target.clamp(max=3))


class TwoFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = torch.relu(self.a(x))
        return [f1, torch.relu(self.b(f1))]


def test_perceptual_grads_reach_image_not_extractor() -> None:
    torch.manual_seed(0)
    net = TwoFeatures()
    a = torch.rand(2, 3, 8, 8, requires_grad=True)
    b = torch.rand(2, 3, 8, 8)
    node = L.PerceptualLoss({"weights": [0.5, 1.0]})
    loss = node(a=a, b=b, features=net)["loss"]
    mean = torch.tensor(L._IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(L._IMAGENET_STD).view(1, 3, 1, 1)
    fa, fb = net((a - mean) / std), net((b - mean) / std)
    want = 0.5 * F.l1_loss(fa[0], fb[0]) + F.l1_loss(fa[1], fb[1])
    assert torch.allclose(loss, want, atol=1e-6)
    loss.backward()
    assert a.grad is not None and all(p.grad is None for p in net.parameters())
    assert float(node(a=b, b=b, features=net)["loss"]) == 0.0
    with pytest.raises(NodeError, match="weights has 3"):
        L.PerceptualLoss({"weights": [1, 1, 1]})(a=a, b=b, features=net)
