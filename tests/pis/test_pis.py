"""pis family: PhotoWCT fidelity to the official computation, the converter, WCT, bad inputs.

The official checkpoint cannot be fetched, so the test writes one in the official layout
(FastPhotoStyle's 80 keys, PyTorch-0.4-style legacy serialisation) from seeded random weights,
and computes the official stylisation with an independent reference written here: plain
functional ops, PIL nearest label resizing and a float64 eigendecomposition for WCT.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image as PILImage

from nodegraph.node import NodeError
from nodes.pis.convert import ConversionError, convert
from nodes.pis.nodes import WCT, PhotoWCT
from nodes.pis.photowct import PhotoWCTNet, valid_labels

# ---- independent reference (official layer lists, written out) ---------------------------
ENC = ["conv1_1", "conv1_2", "pool", "conv2_1", "conv2_2", "pool", "conv3_1", "conv3_2", "conv3_3",
       "conv3_4", "pool", "conv4_1"]
ENC_END = {1: 1, 2: 4, 3: 7, 4: 12}
CH = {"conv1_1": (3, 64), "conv1_2": (64, 64), "conv2_1": (64, 128), "conv2_2": (128, 128),
      "conv3_1": (128, 256), "conv3_2": (256, 256), "conv3_3": (256, 256), "conv3_4": (256, 256),
      "conv4_1": (256, 512)}


def official_state_dict(seed: int) -> OrderedDict:
    """Random He-normal weights (zero bias, small random bias for conv0) in the file's key order."""
    g = torch.Generator().manual_seed(seed)

    def conv(cin: int, cout: int, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.randn(cout, cin, k, k, generator=g) * math.sqrt(2.0 / (cin * k * k))
        return w, torch.zeros(cout)

    sd: OrderedDict = OrderedDict()
    for level in (1, 2, 3, 4):
        w, b = conv(3, 3, 1)
        sd[f"e{level}.conv0.weight"], sd[f"e{level}.conv0.bias"] = w, b + 0.1
        for name in ENC[: ENC_END[level]]:
            if name != "pool":
                sd[f"e{level}.{name}.weight"], sd[f"e{level}.{name}.bias"] = conv(*CH[name])
        for name in reversed(ENC[: ENC_END[level]]):
            if name != "pool":
                cin, cout = CH[name]
                sd[f"d{level}.{name}.weight"], sd[f"d{level}.{name}.bias"] = conv(cout, cin)
    return sd


def ref_conv(sd: dict, key: str, x: torch.Tensor) -> torch.Tensor:
    w = sd[key + ".weight"].double()
    if w.shape[-1] == 3:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return F.conv2d(x, w, sd[key + ".bias"].double())


def ref_encode(sd: dict, mod: str, x: torch.Tensor, level: int):
    h = ref_conv(sd, f"{mod}.conv0", x)
    pools, feats = [], []
    for name in ENC[: ENC_END[level]]:
        if name == "pool":
            pools.append((h.shape, *F.max_pool2d(h, 2, 2, return_indices=True)[::-1]))
            h = F.max_pool2d(h, 2, 2)
        else:
            h = F.relu(ref_conv(sd, f"{mod}.{name}", h))
            if name.endswith("_1"):
                feats.append(h)
    return h, pools, feats


def ref_decode(sd: dict, mod: str, h: torch.Tensor, pools: list, level: int) -> torch.Tensor:
    for name in reversed(ENC[: ENC_END[level]]):
        if name == "pool":
            size, idx, _ = pools.pop()
            h = F.max_unpool2d(h, idx, 2, 2, output_size=size[-2:])
        else:
            h = ref_conv(sd, f"{mod}.{name}", h)
            if name != "conv1_1":
                h = F.relu(h)
    return h


def ref_wct(fc: np.ndarray, fs: np.ndarray) -> np.ndarray:
    mc = fc.mean(1, keepdims=True)
    c = fc - mc
    ec, vc = np.linalg.eigh(c @ c.T / (c.shape[1] - 1) + np.eye(c.shape[0]))
    ms = fs.mean(1, keepdims=True)
    s = fs - ms
    es, vs = np.linalg.eigh(s @ s.T / (s.shape[1] - 1))
    keep_c, keep_s = ec >= 1e-5, es >= 1e-5
    vc, ec, vs, es = vc[:, keep_c], ec[keep_c], vs[:, keep_s], es[keep_s]
    white = vc @ np.diag(ec**-0.5) @ vc.T @ c
    return vs @ np.diag(es**0.5) @ vs.T @ white + ms


def ref_feature_wct(cf, sf, cseg, sseg, labels):
    c, h, w = cf.shape
    fc, fs = cf.reshape(c, -1).numpy(), sf.reshape(c, -1).numpy()
    if labels is None:
        return torch.from_numpy(ref_wct(fc, fs).reshape(c, h, w))
    tc = np.asarray(PILImage.fromarray(cseg).resize((w, h), PILImage.NEAREST)).reshape(-1)
    ts = np.asarray(PILImage.fromarray(sseg).resize((sf.shape[2], sf.shape[1]), PILImage.NEAREST)).reshape(-1)
    out = fc.copy()
    for label in labels:
        ic, is_ = np.where(tc == label)[0], np.where(ts == label)[0]
        if ic.size and is_.size:
            out[:, ic] = ref_wct(fc[:, ic], fs[:, is_])
    return torch.from_numpy(out.reshape(c, h, w))


def ref_labels(cseg, sseg):
    out = []
    for label in np.unique(cseg):
        a, b = (cseg == label).sum(), (sseg == label).sum()
        if a > 10 and b > 10 and a / b < 100 and b / a < 100:
            out.append(label)
    return out


def ref_stylize(sd, content, style, cseg=None, sseg=None):
    """FastPhotoStyle's transform order: style features from e4 for all levels, then 4 -> 1."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _ref_stylize(sd, content, style, cseg, sseg)


def _ref_stylize(sd, content, style, cseg, sseg):
    labels = ref_labels(cseg, sseg) if cseg is not None else None
    _, _, sfeats = ref_encode(sd, "e4", style.double(), 4)
    img = content.double()
    for level in (4, 3, 2, 1):
        feat, pools, _ = ref_encode(sd, f"e{level}", img, level)
        t = ref_feature_wct(feat[0], sfeats[level - 1][0], cseg, sseg, labels)
        img = ref_decode(sd, f"d{level}", t[None], pools, level)
    return img.float()


# ---- fixtures -------------------------------------------------------------------------------
def _images(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 56), torch.linspace(0, 1, 60), indexing="ij")
    content = torch.stack([yy, xx, 0.5 * (yy + xx)])[None] * 0.8 + 0.2 * torch.rand(1, 3, 56, 60, generator=g)
    style = torch.rand(1, 3, 44, 52, generator=g) * torch.tensor([0.9, 0.5, 0.2]).view(1, 3, 1, 1)
    return content.clamp(0, 1), style


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    d = tmp_path_factory.mktemp("photowct")
    sd = official_state_dict(3)
    pth = d / "photo_wct.pth"
    torch.save(sd, pth, _use_new_zipfile_serialization=False)  # PyTorch 0.4-era format
    dst = d / "photowct_official.safetensors"
    summary = convert(str(pth), str(dst))
    return sd, pth, dst, summary


def _close(ours: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    d = (ours - ref).abs().flatten()
    return float(d.mean()), float(d.quantile(0.99))


# ---- tests ----------------------------------------------------------------------------------
def test_converter_reads_official_layout(official):
    sd, _, dst, summary = official
    assert len(sd) == 80
    assert summary.startswith("80 tensors, 8,349,948 parameters")
    from safetensors.torch import load_file

    got = load_file(str(dst))
    assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
    net = PhotoWCTNet(PhotoWCTNet.widths_of(got))
    net.load_state_dict(got, strict=True)


def test_photowct_reproduces_official_global(official):
    sd, _, dst, _ = official
    content, style = _images()
    ref = ref_stylize(sd, content, style)
    node = PhotoWCT({"weights": str(dst)})
    out = node(content=content, style=style)["image"]
    raw = node.net.stylize(content, style)
    mean_raw, p99_raw = _close(raw, ref)
    mean, p99 = _close(out, ref.clamp(0, 1))
    assert mean_raw <= 2e-3 and p99_raw <= 3e-2, (mean_raw, p99_raw)
    assert mean <= 2e-3 and p99 <= 3e-2, (mean, p99)
    assert 0.02 < float(ref.clamp(0, 1).std())  # the comparison is not between two flat images


def test_photowct_reproduces_official_segmentwise(official):
    sd, _, dst, _ = official
    content, style = _images(1)
    cseg = np.zeros((56, 60), np.uint8)
    cseg[:, 30:] = 1
    cseg[:4, :4] = 2  # 16 px in content, absent from the style: stays unstylised
    sseg = np.zeros((44, 52), np.uint8)
    sseg[20:, :] = 1
    ref = ref_stylize(sd, content, style, cseg, sseg)
    # The algorithm, exactly: our network run in float64 gives the float64 reference to rounding.
    net = PhotoWCTNet(PhotoWCTNet.widths_of(sd))
    net.load_state_dict(sd)
    with torch.no_grad():
        out64 = net.double().stylize(content.double(), style.double(), torch.from_numpy(cseg).long(),
                                     torch.from_numpy(sseg).long(), valid_labels(cseg, sseg))
    assert float((out64.float() - ref).abs().max()) <= 1e-6
    # The node, in float32 as the official code runs: level-4 style segments here have 12 and 18
    # pixels for 512 channels (rank-deficient covariances), which amplifies float32 rounding; how
    # much depends on the CPU's kernels (p99 0.03-0.037 seen), so this bound is looser than the
    # global test's while the float64 check above carries the exactness.
    node = PhotoWCT({"weights": str(dst)})
    out = node(content=content, style=style, content_labels=torch.from_numpy(cseg).long()[None],
               style_labels=torch.from_numpy(sseg).long()[None])["image"]
    mean, p99 = _close(out, ref.clamp(0, 1))
    assert mean <= 2e-3 and p99 <= 6e-2, (mean, p99)


def test_converter_rejects_other_layouts(tmp_path):
    bad = official_state_dict(0)
    bad.pop("d4.conv1_1.weight")
    bad["e9.conv0.weight"] = torch.zeros(1)
    p = tmp_path / "bad.pth"
    torch.save(bad, p)
    with pytest.raises(ConversionError, match="missing keys.*unexpected keys"):
        convert(str(p), str(tmp_path / "x.safetensors"))
    pickled = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a whole pickled module: weights_only refuses it
    with pytest.raises(ConversionError, match="whole pickled torch.nn.modules.linear.Linear object"):
        convert(str(pickled), str(tmp_path / "y.safetensors"))


def test_wct_node_matches_style_statistics():
    g = torch.Generator().manual_seed(0)
    content = torch.randn(1, 8, 20, 20, generator=g)
    mix = torch.randn(8, 8, generator=g)
    style = (mix @ torch.randn(8, 300, generator=g)).reshape(1, 8, 15, 20) + 2.0
    out = WCT({"eps": 0.0})(content=content, style=style)["features"]
    f, s = out[0].reshape(8, -1).double(), style[0].reshape(8, -1).double()
    assert torch.allclose(f.mean(1), s.mean(1), atol=1e-4)
    assert torch.allclose(torch.cov(f), torch.cov(s), atol=1e-3 * float(torch.cov(s).abs().max()))


def test_default_weights_run_and_bad_inputs():
    events = []
    node = PhotoWCT()
    node.ctx.emit = lambda ev, **kw: events.append((ev, kw))
    content, style = _images(2)
    out = node(content=content, style=style)["image"]
    assert out.shape == content.shape and torch.isfinite(out).all()
    # a constant style (singular covariance) and the smallest allowed content never give NaN
    flat = torch.full((1, 3, 40, 40), 0.3)
    assert torch.isfinite(node(content=content, style=flat)["image"]).all()
    assert torch.isfinite(node(content=torch.rand(1, 3, 16, 17), style=style)["image"]).all()
    with pytest.raises(NodeError, match="content is 9x1 px.*at least 16x16"):
        node(content=torch.rand(1, 3, 9, 1), style=style)
    # labels that never meet the style's: nothing transferred (official), with a warning;
    # tests/pis/test_segments.py checks this against the reference
    cl = torch.zeros(1, 56, 60, dtype=torch.long)
    sl = torch.ones(1, 44, 52, dtype=torch.long)
    seg = node(content=content, style=style, content_labels=cl, style_labels=sl)["image"]
    assert not torch.allclose(seg, out)
    assert any(ev == "warning" and "nothing transferred" in kw["message"] for ev, kw in events)


def test_grayscale_style_photo_is_converted(tmp_path):
    from nodes.common.io import LoadImage

    p = tmp_path / "grey.png"
    PILImage.fromarray((np.random.default_rng(0).random((30, 40)) * 255).astype(np.uint8), "L").save(p)
    style = LoadImage({"path": str(p)})()["image"]
    assert style.shape == (1, 3, 30, 40)
    content, _ = _images()
    assert torch.isfinite(PhotoWCT()(content=content, style=style)["image"]).all()


def test_photos_dataset_is_deterministic_and_offline():
    from nodegraph.registry import get

    Photos = get("data.Photos")
    a = Photos({"size": 48, "batch_size": 4, "seed": 3, "procedural_fraction": 0.5})()["image"]
    b = Photos({"size": 48, "batch_size": 4, "seed": 3, "procedural_fraction": 0.5})()["image"]
    c = Photos({"size": 48, "batch_size": 4, "seed": 4, "procedural_fraction": 0.5})()["image"]
    assert a.shape == (4, 3, 48, 48) and torch.equal(a, b) and not torch.equal(a, c)
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    with pytest.raises(ValueError, match="unknown"):
        Photos({"photos": ["nope"]})()


def test_write_examples(tmp_path):
    from nodes.data.photos import write_examples

    paths = write_examples(tmp_path)
    names = {p.name for p in paths}
    assert {"style_warm.jpg", "style_cool.jpg"} <= names
    assert all(max(PILImage.open(p).size) <= 512 for p in paths)


def test_label_maps_resize_as_pil_nearest():
    """Label maps follow the official code's PIL NEAREST resize at every size.

    Mutant killed: torch's 'nearest-exact' (what this used before): PIL's 16.16 fixed-point sample
    positions pick another pixel for 56x60 -> 22x26, 56x60 -> 11x13, 44x52 -> 5x6, ...
    """
    from nodes.pis.photowct import _resize_labels

    rng = np.random.default_rng(0)
    for (h0, w0) in [(56, 60), (44, 52), (100, 37)]:
        seg = rng.integers(0, 3, (h0, w0)).astype(np.uint8)
        for (h, w) in [(22, 26), (11, 13), (5, 6), (7, 7), (200, 81)]:
            want = np.asarray(PILImage.fromarray(seg).resize((w, h), PILImage.NEAREST))
            got = _resize_labels(torch.from_numpy(seg).long(), h, w).numpy()
            assert (got == want).all(), (h0, w0, h, w)
