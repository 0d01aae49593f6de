"""loss.Perceptual with built-in backbones: EfficientNet-Lite0 by default, VGG16 from a converted
torchvision-layout file, per-layer weights, the mask, and unchanged behaviour for wired models.

Mutants seen failing: the mask not resized per layer (shape error / wrong value); ImageNet
normalisation applied on top of Lite0's own input transform (wired == built-in check); VGG16 slice
ends shifted by one layer (converter check); the effnet default ladder ignored (weights check)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from nodegraph.cli import main
from nodegraph.node import NodeError
from nodes.common.losses import PerceptualLoss
from nodes.features import backbones as B
from nodes.features.net import Lite0Features, load_pretrained


def _images(seed: int = 0, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(2, 3, size, size, generator=g)
    return a, (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)


def test_default_backbone_is_effnet_and_matches_the_wired_model():
    a, b = _images()
    built_in = PerceptualLoss()(a=a, b=b)["loss"]
    lite = Lite0Features(load_pretrained())
    wired = PerceptualLoss({"weights": list(B.DEFAULT_WEIGHTS["effnet_lite0"])})(a=a, b=b, features=lite)["loss"]
    assert float(built_in) > 0
    assert torch.allclose(built_in, wired)  # Lite0 normalises its own input: no ImageNet mean/std on top
    fa, fb = lite(a), lite(b)
    manual = sum(w * (x - y).abs().mean() for w, x, y in zip(B.DEFAULT_WEIGHTS["effnet_lite0"], fa, fb, strict=True))
    assert torch.allclose(built_in, manual)
    assert float(PerceptualLoss()(a=a, b=a)["loss"]) == 0.0


def test_gradient_reaches_the_image_only():
    a, b = _images(1)
    a = a.clone().requires_grad_(True)
    node = PerceptualLoss({"layers": ["s4", "s16"], "weights": [1.0, 0.5]})
    node(a=a, b=b)["loss"].backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in node._backbone[0].parameters())


class _Pair(torch.nn.Module):
    """Identity at full resolution and a 2x average pool: a transparent 'backbone'."""

    takes_unit_images = True

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, torch.nn.functional.avg_pool2d(x, 2)]


def test_mask_is_resized_per_layer():
    a = torch.zeros(1, 3, 8, 8)
    b = a.clone()
    b[..., :, 4:] = 1.0  # the images differ on the right half only
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :, :4] = 1.0  # look at the left half
    node = PerceptualLoss({"weights": [1.0, 1.0]})
    assert float(node(a=a, b=b, features=_Pair(), mask=mask)["loss"]) == 0.0
    assert float(node(a=a, b=b, features=_Pair(), mask=1 - mask)["loss"]) == pytest.approx(2.0)
    half = torch.zeros(1, 1, 8, 8)
    half[..., :, 3:5] = 1.0  # straddles the edge: at 4 x 4 the two middle columns are half in
    want = 0.5 + 0.5  # full res: 1 of 2 masked columns differs; 4 x 4: two cells weighted 0.5, d = 0 and 1
    assert float(node(a=a, b=b, features=_Pair(), mask=half)["loss"]) == pytest.approx(want)
    assert float(node(a=a, b=b, features=_Pair(), mask=torch.ones(1, 1, 8, 8))["loss"]) == pytest.approx(
        float(node(a=a, b=b, features=_Pair())["loss"]))


def test_vgg16_backbone_from_torchvision_layout(tmp_path):
    torch.manual_seed(0)
    net = B.VGG16Features()
    sd = {k: v * 0.5 for k, v in net.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(4, 4)  # the real file has the classifier too
    torch.save(sd, tmp_path / "vgg16-397923af.pth")
    res = CliRunner().invoke(main, ["convert", "vgg16", str(tmp_path / "vgg16-397923af.pth"),
                                    str(tmp_path / "vgg16.safetensors")])
    assert res.exit_code == 0, res.output
    assert "26 tensors" in res.output
    a, b = _images(2, 32)
    node = PerceptualLoss({"backbone": "vgg16", "backbone_weights": str(tmp_path / "vgg16.safetensors")})
    got = node(a=a, b=b)["loss"]
    # torchvision's features run as one Sequential, cut after relu1_2, 2_2, 3_3, 4_3, 5_3 (indices 3, 8, 15, 22, 29)
    seq = torch.nn.Sequential(*B.VGG16Features().features)
    seq.load_state_dict({k.removeprefix("features."): v for k, v in sd.items() if k.startswith("features.")})

    def taps(x: torch.Tensor) -> list[torch.Tensor]:
        out, h = [], B.imagenet_normalize(x)
        for i, layer in enumerate(seq):
            h = layer(h)
            if i in (3, 8, 15, 22, 29):
                out.append(h)
        return out

    with torch.no_grad():
        want = sum((x - y).abs().mean() for x, y in zip(taps(a), taps(b), strict=True))
    assert torch.allclose(got, want, rtol=1e-5)


def test_conflicts_and_missing_weights_are_named(tmp_path):
    a, b = _images()
    with pytest.raises(NodeError, match="'features' is wired") as e:
        PerceptualLoss({"backbone": "effnet_lite0"})(a=a, b=b, features=_Pair())
    assert e.value.where == "params.backbone"
    with pytest.raises(NodeError, match="nodegraph convert vgg19"):
        PerceptualLoss({"backbone": "vgg19", "backbone_weights": str(tmp_path / "no.safetensors")})(a=a, b=b)
    with pytest.raises(NodeError, match="effnet_lite0 only"):
        PerceptualLoss({"backbone": "vgg16", "layers": ["s4"]})(a=a, b=b)
