"""stacked nodes: conditioning augmentation, the two generators, the discriminators' receptive
fields, mismatched pairs and the matching-aware three-term loss."""

from __future__ import annotations

import pytest
import torch

from nodegraph.node import NodeError
from nodes.common.losses import GANLoss
from nodes.data.birds import make_bird
from nodes.stacked.discriminators import ConditionalDiscriminator, MismatchAttributes, PatchDiscriminator
from nodes.stacked.net import CANet
from nodes.stacked.nodes import Attr2Shape, Shape2Image
from nodes.stacked.unet import Shape2ImageConfig, Shape2ImageNet


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    items = [make_bird(i, seed=5) for i in range(4)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_ca_sample_and_kl_follow_stackgan() -> None:
    """c = mu + exp(logvar / 2) eps; KL = mean(-1/2 (1 + logvar - mu^2 - e^logvar)) (StackGAN KL_loss).
    Mutant caught: sigma = exp(logvar) instead of exp(logvar / 2)."""
    torch.manual_seed(0)
    ca = CANet(10, 4, "glu")
    a, eps = torch.rand(3, 10), torch.randn(3, 4)
    c, mu, logvar, kl = ca(a, eps)
    h = torch.nn.functional.glu(ca.fc(a), 1)
    assert torch.allclose(mu, h[:, :4]) and torch.allclose(logvar, h[:, 4:])
    assert torch.allclose(c, mu + (0.5 * logvar).exp() * eps)
    ref = sum(0.5 * (m * m + v.exp() - 1 - v) for m, v in zip(mu.flatten(), logvar.flatten(), strict=True)) / 12
    assert torch.allclose(kl, ref, atol=1e-6)
    _, mu_r, lv_r, _ = CANet(10, 4, "relu")(a)
    assert (mu_r >= 0).all() and (lv_r >= 0).all()  # StackGAN v1's ReLU-before-split quirk


def test_attr2shape_takes_full_or_shape_vectors_and_is_seeded(batch) -> None:
    g = Attr2Shape({"weights": "", "samples": 2, "seed": 3})
    out = g(attributes=batch["attributes"])
    assert out["shape"].shape == (8, 1, 64, 64) and 0 <= float(out["shape"].min()) <= float(out["shape"].max()) <= 1
    again = g(attributes=batch["attributes"][:, list(range(0, 9)) + list(range(73, 79)) + list(range(149, 152))
                                             + list(range(212, 236))])
    assert torch.equal(out["shape"], again["shape"])  # the 42 shape columns, in schema order
    other = Attr2Shape({"weights": "", "samples": 2, "seed": 4})
    other.ensure_setup()
    other.net.load_state_dict(g.net.state_dict())
    assert not torch.equal(other(attributes=batch["attributes"])["shape"], out["shape"])


def test_shape2image_ports_broadcast_and_errors(batch) -> None:
    g = Shape2Image({"weights": ""})
    one_shape = g(shape=batch["mask"][:1], attributes=batch["attributes"])["image"]
    assert one_shape.shape == (4, 3, 64, 64)
    one_colour = g(shape=batch["mask"], attributes=batch["attributes"][:1])["image"]
    assert one_colour.shape == (4, 3, 64, 64)
    with pytest.raises(NodeError, match="64 x 64"):
        g(shape=torch.rand(1, 1, 32, 32), attributes=batch["attributes"][:1])
    with pytest.raises(NodeError, match="270 or 312"):
        g(shape=batch["mask"], attributes=batch["attributes"][:, :42])  # a shape-sized vector


@pytest.mark.parametrize(("size", "dropouts"), [(64, 1), (128, 2), (256, 3)])
def test_unet_follows_pix2pix_layout(size: int, dropouts: int) -> None:
    """num_downs = log2(size) (1 x 1 bottleneck), Dropout in the num_downs - 5 middle 8ngf blocks."""
    net = Shape2ImageNet(Shape2ImageConfig(size=size, ngf=4))
    assert len(net.downs) == {64: 6, 128: 7, 256: 8}[size]
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == dropouts
    h = torch.zeros(1, 1, size, size)
    for d in net.downs:
        h = d(h)
    assert h.shape[-1] == 1


def test_unet_skips_carry_local_detail() -> None:
    """A change at one mask pixel changes the output near it most (skip connections, §3.3)."""
    torch.manual_seed(0)
    net = Shape2ImageNet(Shape2ImageConfig()).eval()
    s, a, eps = torch.zeros(1, 1, 64, 64), torch.rand(1, 270), torch.zeros(1, 128)
    s2 = s.clone()
    s2[..., 10:14, 50:54] = 1
    with torch.no_grad():
        d = (net(s2, a, eps)[0] - net(s, a, eps)[0]).abs().sum(1)[0]
    assert float(d[6:18, 46:58].mean()) > 5 * float(d[40:, :20].mean())


@pytest.mark.parametrize(("rf", "touched"), [("pixel", 1), ("patch3", 9), ("global", 1)])
def test_patch_discriminator_receptive_field(rf: str, touched: int) -> None:
    """Perturbing one input pixel changes 1 (pixel), 3 x 3 (patch3) or the only (global) logit."""
    d = PatchDiscriminator({"receptive_field": rf, "ndf": 8})
    d.ensure_setup()
    x = torch.rand(1, 1, 64, 64)
    y = x.clone()
    y[..., 30, 30] += 0.5
    with torch.no_grad():
        diff = d.net(x * 2 - 1) != d.net(y * 2 - 1)
    assert int(diff.sum()) == touched


def test_conditional_d_three_pairs_and_mismatch(batch) -> None:
    d = ConditionalDiscriminator({"channels": 3, "subset": "non_shape", "ndf": 8})
    wrong = MismatchAttributes({"mode": "shift"})(attributes=batch["attributes"])["wrong"]
    assert not (wrong == batch["attributes"]).all(1).any()
    out = d(fake=batch["image"], real=batch["image"], attributes=batch["attributes"], wrong=wrong)
    assert set(out) == {"fake", "real", "wrong"} and out["real"].shape == (4, 1, 1, 1)
    assert not torch.equal(out["real"], out["wrong"])  # same images, other attributes
    cls = MismatchAttributes({"mode": "class"})
    ids = torch.tensor([0, 0, 1, 1])
    torch.manual_seed(0)
    w = cls(attributes=torch.eye(4), class_id=ids)["wrong"]
    assert (w.argmax(1) // 2 != ids).all()  # always another class


def test_shift_mismatch_avoids_identical_vectors() -> None:
    a = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0]])
    w = MismatchAttributes({})(attributes=a)["wrong"]
    assert not (w == a).all(1).any()


def test_shift_mismatch_compares_the_subset_the_d_reads(batch) -> None:
    """Two birds with the same shape attributes but other colours are the same condition to Stage-I's
    shape D: with ``subset`` shape the shift rolls past them. Mutant caught: comparing the full
    312-vector (the first version) pairs item 0 with item 1, whose shape columns are identical."""
    a = batch["attributes"].clone()
    shape = list(range(0, 9)) + list(range(73, 79)) + list(range(149, 152)) + list(range(212, 236))
    a[1, shape] = a[0, shape]  # item 1: item 0's shape, its own colours
    a[2, shape] = a[0, shape]
    assert not torch.equal(a[0], a[1])
    w = MismatchAttributes({"subset": "shape"})(attributes=a)["wrong"]
    assert not (w[:, shape] == a[:, shape]).all(1).any()
    assert (MismatchAttributes({})(attributes=a)["wrong"][0, shape] == a[0, shape]).all()  # full compare: a clash


def test_gan_loss_matching_aware_terms() -> None:
    """L_D = t_r (D(x,a) - 1)^2 + t_w D(x,a_hat)^2 + t_f D(G,a)^2 (LSGAN). Mutant caught: wrong scored as real."""
    real, wrong, fake = torch.tensor([0.5]), torch.tensor([0.25]), torch.tensor([-0.5])
    paper = GANLoss({"mode": "ls", "role": "d"})(fake=fake, real=real, wrong=wrong)
    assert torch.isclose(paper["loss"], torch.tensor(0.25 + 0.0625 + 0.25))
    stack = GANLoss({"mode": "ls", "role": "d", "terms": [1.0, 0.5, 0.5]})(fake=fake, real=real, wrong=wrong)
    assert torch.isclose(stack["loss"], torch.tensor(0.25 + 0.5 * (0.0625 + 0.25)))
    two = GANLoss({"mode": "ls", "role": "d", "terms": [1.0, 0.5, 0.5]})(fake=fake, real=real)
    assert torch.isclose(two["loss"], torch.tensor(0.5))  # no wrong: the plain two-term form


def test_cpu_presets_that_train_in_a_cpu_budget() -> None:
    """Attr2Shape ``wide``: gf 32 (the output conv reads 16 channels, not 8) and GLU CA; Shape2Image
    ``glu``: GLU CA; both CAs can give sigma < 1, which v1's ReLU CA (``cpu``) cannot. Mutant caught:
    ``wide`` built with the ReLU CA (log-variances all >= 0)."""
    torch.manual_seed(0)
    s1 = Attr2Shape({"weights": "", "preset": "wide"})
    s1.ensure_setup()
    assert s1.net.out.in_channels == 16 and s1.net.ca.act == "glu"
    s2 = Shape2Image({"weights": "", "preset": "glu"})
    s2.ensure_setup()
    assert s2.net.ca.act == "glu" and s2.net.cfg.ngf == 16
    a = torch.rand(64, 312)
    for net, cols in ((s1.net, a[:, :42]), (s2.net, a[:, :270])):
        _, _, logvar, _ = net.ca(cols)
        assert (logvar < 0).any()
