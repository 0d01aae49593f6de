"""PhotoWCT network (Li et al., "A Closed-form Solution to Photorealistic Image Stylization", ECCV 2018).

The photorealistic variant of WCT: a normalised-VGG19 encoder cut at relu1_1 .. relu4_1, four
decoders that invert it, and -- the PhotoWCT change -- decoders that *unpool* with the encoder's
max-pool switches instead of upsampling, so the decoded image keeps the content's edges.

The layout mirrors the official checkpoint exactly (eight modules ``e1..e4``, ``d1..d4``; each
encoder holds its own copy of the VGG prefix), so an official ``photo_wct.pth`` loads with
``strict=True`` after a pure key check. Channel widths are a constructor argument so our small
embedded default (half width) shares all code with the official one.

Transform (Sec. 3.1, official order): style features for *all* levels come from one pass of e4;
then level 4 -> 1, each level encodes the *current* image, applies WCT, and decodes with the pool
indices of that encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from torch import nn

OFFICIAL_WIDTHS = (64, 128, 256, 512)
SMALL_VALUE_CUT = 1e-5
"""Singular values of a covariance below this are dropped (official rank cut)."""
CONTENT_COV_EPS = 1.0
"""Added as eps*I to the *content* covariance only (official; the style covariance is not regularised)."""

Pools = list[tuple[torch.Tensor, torch.Size]]


def _conv3(cin: int, cout: int) -> nn.Conv2d:
    # Reflection padding then a 'valid' 3x3 conv, as the Torch-converted VGG does; padding_mode
    # keeps the state_dict key plain (``conv1_1.weight``) like the official module.
    return nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")


def encoder_plan(level: int, widths: Sequence[int]) -> list[tuple[str, int, int]]:
    """(name, in, out) of the encoder up to relu{level}_1; names 'poolK' are 2x2 max-pools."""
    w1, w2, w3, w4 = widths
    plan = [("conv1_1", 3, w1), ("conv1_2", w1, w1), ("pool1", 0, 0), ("conv2_1", w1, w2),
            ("conv2_2", w2, w2), ("pool2", 0, 0), ("conv3_1", w2, w3), ("conv3_2", w3, w3),
            ("conv3_3", w3, w3), ("conv3_4", w3, w3), ("pool3", 0, 0), ("conv4_1", w3, w4)]
    ends = {1: "conv1_1", 2: "conv2_1", 3: "conv3_1", 4: "conv4_1"}
    names = [p[0] for p in plan]
    return plan[: names.index(ends[level]) + 1]


def decoder_plan(level: int, widths: Sequence[int]) -> list[tuple[str, int, int]]:
    """Mirror of :func:`encoder_plan`: each conv is named after the encoder conv it inverts."""
    out = []
    for name, cin, cout in reversed(encoder_plan(level, widths)):
        if name.startswith("pool"):
            out.append(("unpool" + name[4:], 0, 0))
        else:
            out.append((name, cout, cin))
    return out


class VGGEncoder(nn.Module):
    """Normalised-VGG19 prefix up to relu{level}_1 (E_k in the paper's Fig. 2).

    ``conv0`` is the 1x1 colour conv that carries the Torch model's input preprocessing, so
    the input is plain RGB in [0, 1]. ReLU follows every 3x3 conv; max-pools return indices.
    """

    def __init__(self, level: int, widths: Sequence[int] = OFFICIAL_WIDTHS) -> None:
        super().__init__()
        self.level = level
        self.conv0 = nn.Conv2d(3, 3, 1)
        self.plan = encoder_plan(level, widths)
        for name, cin, cout in self.plan:
            if not name.startswith("pool"):
                self.add_module(name, _conv3(cin, cout))

    def forward(self, x: torch.Tensor, all_levels: bool = False):
        """relu{level}_1 features and the pool (indices, pre-pool size) pairs, shallow first.

        With ``all_levels`` the features are instead ``[relu{level}_1, ..., relu1_1]``.
        """
        h, feats, pools = self.encode_levels(x)
        if all_levels:
            return feats[::-1]
        return h, pools

    def encode_levels(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], Pools]:
        """One pass: the last activation, every relu{k}_1 (shallow first) and the pool switches."""
        h = self.conv0(x)
        pools: Pools = []
        feats: list[torch.Tensor] = []
        for name, _, _ in self.plan:
            if name.startswith("pool"):
                size = h.shape
                h, idx = F.max_pool2d(h, 2, 2, return_indices=True)
                pools.append((idx, size))
            else:
                h = F.relu(getattr(self, name)(h))
                if name.endswith("_1"):
                    feats.append(h)
        return h, feats, pools


class VGGDecoder(nn.Module):
    """Inverse of :class:`VGGEncoder` at the same level (D_k): convs + max-unpooling with the
    encoder's switches (PhotoWCT's replacement for upsampling). No activation on the last conv;
    the output is not clamped (the caller decides)."""

    def __init__(self, level: int, widths: Sequence[int] = OFFICIAL_WIDTHS) -> None:
        super().__init__()
        self.level = level
        self.plan = decoder_plan(level, widths)
        for name, cin, cout in self.plan:  # deepest first, as the official state_dict
            if not name.startswith("unpool"):
                self.add_module(name, _conv3(cin, cout))

    def forward(self, x: torch.Tensor, pools: Pools) -> torch.Tensor:
        h = x
        for name, _, _ in self.plan:
            if name.startswith("unpool"):
                idx, size = pools[int(name[6:]) - 1]
                h = F.max_unpool2d(h, idx, 2, 2, output_size=size[-2:])
            else:
                h = getattr(self, name)(h)
                if name != "conv1_1":
                    h = F.relu(h)
        return h


def wct(content: torch.Tensor, style: torch.Tensor, eps: float = CONTENT_COV_EPS,
        cut: float = SMALL_VALUE_CUT) -> torch.Tensor:
    """Whitening-colouring transform on C x N feature matrices (WCT, Li et al. 2017, Eq. 3-4).

    Whitening: Fc_hat = E_c D_c^-1/2 E_c^T (Fc - m_c) with cov_c = Fc Fc^T/(N-1) + eps*I.
    Colouring: Fcs = E_s D_s^1/2 E_s^T Fc_hat + m_s with cov_s = Fs Fs^T/(N-1) (no regulariser).
    Singular values below ``cut`` are dropped (if all are, all are kept, like the official loop).
    No alpha blend: PhotoWCT replaces the content feature. Float32 SVD, as the official code.
    Columns are pixels; ``style`` may have a different N. Fewer than 2 columns on either side
    (no covariance) returns the content unchanged instead of dividing by zero.
    """
    c, n_c = content.shape
    n_s = style.shape[1]
    if n_c < 2 or n_s < 2:
        return content.clone()
    m_c = content.mean(1, keepdim=True)
    fc = content - m_c
    cov_c = fc @ fc.t() / (n_c - 1) + eps * torch.eye(c, dtype=content.dtype, device=content.device)
    _, e_c, vh_c = _svd(cov_c)
    k_c = _rank(e_c, cut)
    v_c = vh_c.t()[:, :k_c]
    whitened = (v_c @ torch.diag(e_c[:k_c].pow(-0.5)) @ v_c.t()) @ fc

    m_s = style.mean(1, keepdim=True)
    fs = style - m_s
    cov_s = fs @ fs.t() / (n_s - 1)
    _, e_s, vh_s = _svd(cov_s)
    k_s = _rank(e_s, cut)
    v_s = vh_s.t()[:, :k_s]
    out = (v_s @ torch.diag(e_s[:k_s].pow(0.5)) @ v_s.t()) @ whitened + m_s
    return out


def _svd(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # One thread: a 512x512 SVD takes ~0.05 s on one thread but 6-9 s when MKL's threads fight
    # other processes for the cores (measured on the shared 2-core machine).
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.svd(m)
    finally:
        torch.set_num_threads(old)


def _rank(values: torch.Tensor, cut: float) -> int:
    # Singular values come sorted descending; keep the leading ones >= cut (official rule).
    k = int((values >= cut).sum())
    return k if k > 0 else values.numel()


def valid_labels(content_seg: np.ndarray, style_seg: np.ndarray) -> list[int]:
    """Content labels usable for segment-wise WCT (official rule, on the full-resolution maps):
    more than 10 pixels on both sides and a pixel-count ratio below 100 either way."""
    out = []
    for label in np.unique(content_seg):
        a = int((content_seg == label).sum())
        b = int((style_seg == label).sum())
        if a > 10 and b > 10 and a / b < 100 and b / a < 100:
            out.append(int(label))
    return out


def cross_remap(content_seg: np.ndarray, style_seg: np.ndarray,
                related: Mapping[int, Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Relabel segments that exist on one side only, as FastPhotoStyle's ADE20K path does
    (``SegReMapping.cross_remapping`` in process_stylization_ade20k_ssn.py, there with a
    150 x 150 relation table; here ``related`` maps a label to labels ordered by relatedness).

    1. Each content label absent from the style becomes the first of its related labels that
       the style has (unchanged if none).
    2. Each style label absent from the relabelled content becomes the first of its related
       labels that both have (unchanged if none), so its pixels add to that segment's style.
    Presence counts any pixel (the size rule of :func:`valid_labels` applies afterwards).
    Returns new arrays; the inputs are not modified.
    """
    c_new, s_new = content_seg.copy(), style_seg.copy()
    style_has = set(np.unique(style_seg).tolist())
    for label in set(np.unique(content_seg).tolist()) - style_has:
        to = next((r for r in related.get(label, ()) if r in style_has), None)
        if to is not None:
            c_new[content_seg == label] = to
    content_has = set(np.unique(c_new).tolist())
    both = style_has & content_has
    for label in style_has - content_has:
        to = next((r for r in related.get(label, ()) if r in both), None)
        if to is not None:
            s_new[style_seg == label] = to
    return c_new, s_new


def _resize_labels(seg: torch.Tensor, h: int, w: int) -> torch.Tensor:
    # The official code resizes label maps with PIL's NEAREST; PIL computes the sample positions
    # in 16.16 fixed point, which picks another pixel than torch's 'nearest-exact' at some sizes
    # (56x60 -> 22x26, 44x52 -> 5x6, ...: tests/pis), so PIL itself does it (int32 = mode "I").
    arr = seg.detach().cpu().numpy().astype(np.int32)
    out = PILImage.fromarray(arr).resize((w, h), PILImage.NEAREST)
    return torch.from_numpy(np.asarray(out, dtype=np.int64)).to(seg.device)


def feature_wct(cf: torch.Tensor, sf: torch.Tensor, content_seg: torch.Tensor | None = None,
                style_seg: torch.Tensor | None = None, labels: Sequence[int] | None = None) -> torch.Tensor:
    """WCT on C x H x W features, globally or per label (labels = :func:`valid_labels`).

    Per label, both maps are resized to the feature size; pixels of labels not transferred keep
    their content feature (official behaviour).
    """
    c, h, w = cf.shape
    fc = cf.reshape(c, -1)
    fs = sf.reshape(sf.shape[0], -1)
    if content_seg is None or style_seg is None or labels is None:
        return wct(fc, fs).reshape(c, h, w)
    tc = _resize_labels(content_seg, h, w).reshape(-1).to(cf.device)
    ts = _resize_labels(style_seg, sf.shape[1], sf.shape[2]).reshape(-1).to(cf.device)
    out = fc.clone()
    for label in labels:
        ic = (tc == label).nonzero().squeeze(1)
        is_ = (ts == label).nonzero().squeeze(1)
        if ic.numel() == 0 or is_.numel() == 0:
            continue
        out[:, ic] = wct(fc[:, ic], fs[:, is_])
    return out.reshape(c, h, w)


class PhotoWCTNet(nn.Module):
    """The eight PhotoWCT modules (e1, d1, ..., e4, d4 -- the official state_dict order)."""

    def __init__(self, widths: Sequence[int] = OFFICIAL_WIDTHS) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        for k in range(1, 5):
            self.add_module(f"e{k}", VGGEncoder(k, self.widths))
            self.add_module(f"d{k}", VGGDecoder(k, self.widths))

    @staticmethod
    def widths_of(state_dict: dict[str, torch.Tensor]) -> tuple[int, ...]:
        """Channel widths implied by a state_dict in the PhotoWCT layout."""
        return tuple(int(state_dict[f"e4.conv{k}_1.weight"].shape[0]) for k in range(1, 5))

    def encoder(self, level: int) -> VGGEncoder:
        return getattr(self, f"e{level}")

    def decoder(self, level: int) -> VGGDecoder:
        return getattr(self, f"d{level}")

    def stylize(self, content: torch.Tensor, style: torch.Tensor,
                content_seg: torch.Tensor | None = None, style_seg: torch.Tensor | None = None,
                labels: Sequence[int] | None = None,
                progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Raw (unclamped) stylised image, 1 x 3 x H x W, for one content/style pair.

        ``content_seg``/``style_seg`` are H x W integer maps at any size; ``labels`` the
        transferable labels (None = global transfer).
        """
        style_feats = self.e4(style, all_levels=True)  # relu4_1, relu3_1, relu2_1, relu1_1
        img = content
        for step, level in enumerate((4, 3, 2, 1)):
            feat, pools = self.encoder(level)(img)
            target = feature_wct(feat[0], style_feats[4 - level][0], content_seg, style_seg, labels)
            img = self.decoder(level)(target[None], pools)
            if progress is not None:
                progress(step + 1, 4)
        return img
