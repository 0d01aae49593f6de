"""Face parsing nodes and the component geometry of mask-guided portrait editing."""

from __future__ import annotations

import torch

from nodes.faceparse import ComponentCrop
from nodes.faceparse_geometry import (
    COMPONENTS,
    FEATURE_SCALE,
    component_centres,
    crop_at,
    expand_parts,
    paste_at,
)


def _mask(h: int = 256, w: int = 256) -> torch.Tensor:
    lab = torch.zeros(1, h, w, dtype=torch.int64)
    lab[0, 60:230, 60:200] = 1
    lab[0, 110:121, 80:111] = 4     # bbox midpoint (115, 95)
    lab[0, 112:120, 150:171] = 5    # (115, 160)
    lab[0, 175:181, 100:157] = 7    # mouth group bbox rows 175..194, cols 100..156 -> (184, 128)
    lab[0, 181:186, 110:147] = 8
    lab[0, 186:195, 100:157] = 9
    lab[0, 20:60, 40:220] = 10
    return lab


def test_centres_are_official_bbox_midpoints_with_fallbacks():
    c = component_centres(_mask())[0]
    assert c.tolist() == [[115, 95], [115, 160], [184, 128], [128, 128], [128, 128]]
    empty = torch.zeros(1, 256, 256, dtype=torch.int64)
    assert component_centres(empty)[0, :3].tolist() == [[116, 96], [116, 160], [184, 128]]


def test_centres_clamped_at_the_border():
    lab = torch.zeros(1, 256, 256, dtype=torch.int64)
    lab[0, 2:6, 0:6] = 4
    lab[0, 250:256, 250:256] = 9
    c = component_centres(lab)[0]
    assert c[0].tolist() == [16, 24] and c[2].tolist() == [256 - 40, 256 - 72]
    img = torch.rand(1, 3, 256, 256)
    out = ComponentCrop({})(image=img, labels=lab)
    assert out["l_eye"].shape == (1, 3, 32, 48) and torch.equal(out["l_eye"][0], img[0, :, :32, :48])


def test_crop_sizes_and_masks():
    lab = _mask()
    img = torch.rand(1, 3, 256, 256)
    out = ComponentCrop({"fill": 0.0})(image=img, labels=lab)
    assert [tuple(out[c].shape[-2:]) for c in COMPONENTS] == [(32, 48), (32, 48), (80, 144), (256, 256),
                                                              (256, 256)]
    assert torch.equal(out["l_eye"][0], img[0, :, 99:131, 71:119])  # plain window (official)
    mouth_win = lab[0, 144:224, 56:200]
    assert torch.equal(out["mouth"][0] != 0, torch.isin(mouth_win, torch.tensor([7, 8, 9])).expand(3, -1, -1)
                       & (img[0, :, 144:224, 56:200] != 0))
    assert (out["hair"][0][:, lab[0] != 10] == 0).all() and torch.equal(out["hair"][0][:, 30, 50], img[0, :, 30, 50])
    eye_only = ComponentCrop({"eye_only": True, "fill": 0.0})(image=img, labels=lab)
    assert (eye_only["l_eye"][0][:, 0, 0] == 0).all()  # skin around the eye removed
    half = ComponentCrop({})(image=img[..., ::2, ::2].contiguous(), labels=lab[:, ::2, ::2].contiguous())
    assert half["mouth"].shape[-2:] == (40, 72) and half["l_eye"].shape[-2:] == (16, 24)


def test_paste_inverts_crop_and_places_features_like_the_official_code():
    img = torch.rand(2, 3, 256, 256)
    centres = torch.tensor([[100.0, 90.0], [180.0, 130.0]])
    patch = crop_at(img, centres, (32, 48))
    back = paste_at(patch, centres, (256, 256))
    assert torch.equal(back[0, :, 84:116, 66:114], img[0, :, 84:116, 66:114])
    assert back[0].abs().sum() == patch[0].abs().sum()
    feat = torch.ones(2, 4, 8, 12, requires_grad=True)
    grid = paste_at(feat, centres, (64, 64), FEATURE_SCALE)
    cy, cx = int(100 / 4 + 0.5), int(90 / 4 + 0.5)  # official int(c/4 + 0.5) +- 4 / +- 6
    assert grid[0, :, cy - 4:cy + 4, cx - 6:cx + 6].eq(1).all() and grid[0].sum() == 4 * 8 * 12
    grid.sum().backward()
    assert feat.grad.eq(1).all()


def test_expand_enlarges_eyes_and_mouth_only():
    lab = _mask()
    big = expand_parts(lab, factor=1.1)
    for k in (4, 5, 8):
        assert (big == k).sum() > (lab == k).sum()
    assert (big == 10).sum() == (lab == 10).sum()
    out = ComponentCrop({"expand": True})(image=torch.rand(1, 3, 256, 256), labels=lab)
    assert torch.equal(out["labels"], big)
    assert torch.equal(expand_parts(lab, factor=1.0), lab)
