"""Metric nodes: known values, agreement with scikit-image's SSIM, segmentation scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nodes.common.metrics as M
from nodegraph.node import Context, NodeError
from nodegraph.types import LabelMap


def test_psnr_known_value() -> None:
    a = torch.zeros(2, 3, 4, 4)
    b = torch.full((2, 3, 4, 4), 0.1)
    b[1] = 0.01
    out = M.PSNR()(a=a, b=b)
    assert out["per_image"].tolist() == pytest.approx([20.0, 40.0], abs=1e-3)
    assert float(out["value"]) == pytest.approx(30.0, abs=1e-3)
    with pytest.raises(NodeError, match="same shape"):
        M.PSNR()(a=a, b=b[:1])


def test_ssim_identity_and_skimage_agreement() -> None:
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g)
    b = (a + 0.1 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)
    assert float(M.SSIM()(a=a, b=a)["value"]) == pytest.approx(1.0, abs=1e-5)
    out = M.SSIM()(a=a, b=b)["per_image"]
    for i in range(2):
        ref = structural_similarity(a[i].permute(1, 2, 0).numpy(), b[i].permute(1, 2, 0).numpy(),
                                    data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
        assert float(out[i]) == pytest.approx(ref, abs=1e-4)


def seg_pair() -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.tensor([[[0, 0, 1, 1], [2, 2, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1, 1], [2, 2, 0, 0]]])
    return pred, target


def test_pixel_accuracy_with_ignore() -> None:
    pred, target = seg_pair()
    acc = M.PixelAccuracy({"ignore_index": 255})(target=target, pred=pred)["value"]
    assert float(acc) == pytest.approx(5 / 7)
    logits = torch.nn.functional.one_hot(pred.clamp(max=2), 3).permute(0, 3, 1, 2).float()
    acc2 = M.PixelAccuracy({"ignore_index": 255})(target=target, logits=logits)["value"]
    assert float(acc2) == pytest.approx(5 / 7)
    with pytest.raises(NodeError, match="either 'pred'"):
        M.PixelAccuracy()(target=target)


def test_mean_iou() -> None:
    pred, target = seg_pair()
    out = M.MeanIoU({"ignore_index": 255, "classes": 4})(target=target, pred=pred)
    # class 0: inter 1, union 3; class 1: inter 2, union 3; class 2: inter 2, union 3; class 3 absent
    assert out["per_class"][:3].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert np.isnan(float(out["per_class"][3]))
    assert float(out["value"]) == pytest.approx(5 / 9)
    perfect = M.MeanIoU({"ignore_index": 255})(target=target, pred=target.clamp(max=2))["value"]
    assert float(perfect) == pytest.approx(1.0)


def test_classes_from_the_label_set() -> None:
    import nodes.common.labelsets  # noqa: F401  (registers celebamask11)

    ctx = Context(node_id="miou")
    ctx.input_types = {"target": LabelMap("celebamask11")}
    node = M.MeanIoU({}, ctx)
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    out = node(target=target, pred=target)
    assert out["per_class"].shape == (11,)
