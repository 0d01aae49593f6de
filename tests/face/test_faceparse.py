"""Face parsing nodes and the component geometry of mask-guided portrait editing."""

from __future__ import annotations

import pytest
import torch

from nodes.face.geometry import (
    COMPONENTS,
    FEATURE_SCALE,
    component_centres,
    crop_at,
    expand_parts,
    paste_at,
)
from nodes.face.nodes import ComponentCrop


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
    assert torch.isclose(back[0].abs().sum(), patch[0].abs().sum())
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


# ---- BiSeNet: an independent reference in the official layout -------------------------------------

class _CBR(torch.nn.Module):
    def __init__(self, i, o, k=3, s=1, p=1):
        super().__init__()
        self.conv = torch.nn.Conv2d(i, o, k, s, p, bias=False)
        self.bn = torch.nn.BatchNorm2d(o)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class _Block(torch.nn.Module):
    def __init__(self, i, o, s=1):
        super().__init__()
        self.conv1, self.bn1 = torch.nn.Conv2d(i, o, 3, s, 1, bias=False), torch.nn.BatchNorm2d(o)
        self.conv2, self.bn2 = torch.nn.Conv2d(o, o, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(o)
        self.downsample = (torch.nn.Sequential(torch.nn.Conv2d(i, o, 1, s, bias=False), torch.nn.BatchNorm2d(o))
                           if (i != o or s != 1) else None)

    def forward(self, x):
        r = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu((x if self.downsample is None else self.downsample(x)) + r)


class _ARM(torch.nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.conv = _CBR(i, o)
        self.conv_atten = torch.nn.Conv2d(o, o, 1, bias=False)
        self.bn_atten = torch.nn.BatchNorm2d(o)

    def forward(self, x):
        f = self.conv(x)
        a = torch.nn.functional.avg_pool2d(f, f.shape[2:])
        return f * torch.sigmoid(self.bn_atten(self.conv_atten(a)))


class _Head(torch.nn.Module):
    def __init__(self, i, m, n):
        super().__init__()
        self.conv = _CBR(i, m)
        self.conv_out = torch.nn.Conv2d(m, n, 1, bias=False)

    def forward(self, x):
        return self.conv_out(self.conv(x))


class _RefBiSeNet(torch.nn.Module):
    """face-parsing.PyTorch model.py/resnet.py structure, written for this test only."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.cp = nn.Module()
        r = self.cp.resnet = nn.Module()
        r.conv1, r.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        r.layer1 = nn.Sequential(_Block(64, 64), _Block(64, 64))
        r.layer2 = nn.Sequential(_Block(64, 128, 2), _Block(128, 128))
        r.layer3 = nn.Sequential(_Block(128, 256, 2), _Block(256, 256))
        r.layer4 = nn.Sequential(_Block(256, 512, 2), _Block(512, 512))
        self.cp.arm16, self.cp.arm32 = _ARM(256, 128), _ARM(512, 128)
        self.cp.conv_head32, self.cp.conv_head16 = _CBR(128, 128), _CBR(128, 128)
        self.cp.conv_avg = _CBR(512, 128, 1, 1, 0)
        self.ffm = nn.Module()
        self.ffm.convblk = _CBR(256, 256, 1, 1, 0)
        self.ffm.conv1 = nn.Conv2d(256, 64, 1, bias=False)
        self.ffm.conv2 = nn.Conv2d(64, 256, 1, bias=False)
        self.conv_out, self.conv_out16, self.conv_out32 = _Head(256, 256, 19), _Head(128, 64, 19), _Head(128, 64, 19)

    def forward(self, x):
        F = torch.nn.functional
        r, cp = self.cp.resnet, self.cp
        x = F.max_pool2d(torch.relu(r.bn1(r.conv1(x))), 3, 2, 1)
        f8 = r.layer2(r.layer1(x))
        f16 = r.layer3(f8)
        f32 = r.layer4(f16)
        avg = cp.conv_avg(F.avg_pool2d(f32, f32.shape[2:]))
        s32 = cp.arm32(f32) + F.interpolate(avg, f32.shape[2:], mode="nearest")
        u32 = cp.conv_head32(F.interpolate(s32, f16.shape[2:], mode="nearest"))
        u16 = cp.conv_head16(F.interpolate(cp.arm16(f16) + u32, f8.shape[2:], mode="nearest"))
        fuse = self.ffm.convblk(torch.cat([f8, u16], 1))
        att = torch.sigmoid(self.ffm.conv2(torch.relu(self.ffm.conv1(F.avg_pool2d(fuse, fuse.shape[2:])))))
        return self.conv_out(fuse * att + fuse)


def test_bisenet_converter_reproduces_the_reference(tmp_path):
    from nodes.face.convert import convert
    from nodes.face.nodes import BiSeNetParser

    torch.manual_seed(0)
    ref = _RefBiSeNet().eval()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    src = tmp_path / "79999_iter.pth"
    torch.save(ref.state_dict(), src)
    dst = convert(str(src), str(tmp_path / "bisenet.safetensors"))
    node = BiSeNetParser({"weights": str(dst), "size": 64})
    img = torch.rand(2, 3, 64, 64)
    out = node(image=img)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = torch.nn.functional.interpolate(ref((img - mean) / std), (64, 64), mode="bilinear",
                                               align_corners=True)
    assert torch.allclose(out["logits"], want, atol=1e-4)
    assert out["labels"].max() <= 10 and out["labels19"].max() <= 18
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a face-parsing.PyTorch BiSeNet"):
        convert(str(bad), str(tmp_path / "x.safetensors"))


def test_bisenet_parser_without_weights_says_how_to_convert():
    from nodegraph.node import NodeError
    from nodes.face.nodes import BiSeNetParser

    with pytest.raises(NodeError, match="nodegraph convert bisenet"):
        BiSeNetParser({"weights": ""})(image=torch.rand(1, 3, 32, 32))


def test_unet_parser_shapes_and_any_size():
    from nodes.face.nodes import UNetParser

    out = UNetParser({"weights": "", "size": 0, "ngf": 8})(image=torch.rand(2, 3, 72, 100))
    assert out["labels"].shape == (2, 72, 100) and out["logits"].shape == (2, 11, 72, 100)


def test_trained_parser_on_held_out_faces():
    from nodegraph.weights import WeightsError, resolve
    from nodes.data.portraits import ProceduralPortraits
    from nodes.face.nodes import UNetParser

    try:
        resolve("face_parser_default")
    except WeightsError:
        pytest.skip("face_parser_default not trained yet")
    ds = ProceduralPortraits(4, size=128, seed=4321)
    x = torch.stack([ds[i]["image"] for i in range(4)])
    y = torch.stack([ds[i]["labels"] for i in range(4)])
    out = UNetParser({})(image=x)
    assert (out["labels"] == y).float().mean() > 0.9


# ---- LandmarkParser (MediaPipe, optional) -----------------------------------------------------------

def _mediapipe() -> bool:
    try:
        from nodes.face.landmarks import import_mediapipe

        import_mediapipe()
        return True
    except ImportError:
        return False


needs_mp = pytest.mark.skipif(not _mediapipe(), reason="mediapipe not installed (optional [faces] extra)")


@needs_mp
def test_landmark_parser_on_the_astronaut_photo():
    from skimage import data

    from nodes.face.nodes import LandmarkParser

    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255
    out = LandmarkParser({})(image=img)
    assert out["image"].shape == (1, 3, 256, 256) and out["landmarks"].shape == (1, 478, 2)
    present = set(out["labels"].unique().tolist())
    assert present == set(range(11))
    c = out["centres"][0]
    # aligned to the official canon: eyes (116, 96) / (116, 160), mouth (184, 128), (y, x)
    for k, want in enumerate([(116, 96), (116, 160), (184, 128)]):
        assert (c[k] - torch.tensor(want, dtype=torch.float32)).abs().max() <= 6, (k, c[k])
    raw = LandmarkParser({"align": False})(image=img)
    assert raw["labels"].shape == (1, 512, 512)


@needs_mp
def test_landmark_parser_says_no_face():
    from skimage import data

    from nodegraph.node import NodeError
    from nodes.face.nodes import LandmarkParser

    img = torch.from_numpy(data.coffee()).permute(2, 0, 1)[None].float() / 255
    with pytest.raises(NodeError, match="no face found in image 0"):
        LandmarkParser({})(image=img)


def test_landmark_parser_names_the_install_when_mediapipe_is_missing(monkeypatch):
    import builtins

    from nodegraph.node import NodeError
    from nodes.face.nodes import LandmarkParser

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("mediapipe"):
            raise ImportError("No module named 'mediapipe'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(NodeError, match="pip install --no-deps mediapipe==0.10.21"):
        LandmarkParser({})(image=torch.rand(1, 3, 64, 64))
