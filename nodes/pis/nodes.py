"""pis family: photorealistic image stylisation (Li et al., ECCV 2018) as graph nodes.

PhotoWCT (stylisation step F1) and the smoothing step F2 (closed form or guided-filter
approximation). The networks and solvers live in ``nodes.pis.photowct`` and
``nodes.pis.smoothing``; these classes are the typed doors to them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from nodegraph import weights as W
from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Image, LabelMap, Tensor

from .photowct import CONTENT_COV_EPS, SMALL_VALUE_CUT, PhotoWCTNet, cross_remap, feature_wct, valid_labels, wct
from .smoothing import closed_form_smooth, guided_filter, official_geometry_smooth


def _hwc(img: torch.Tensor) -> np.ndarray:
    return img.detach().to("cpu", torch.float64).permute(1, 2, 0).numpy()


def _chw(arr: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(like.device, torch.float32)


def _match_size(node: Node, x: torch.Tensor, ref: torch.Tensor, port: str) -> torch.Tensor:
    """Resize ``x`` (N x 3 x h x w) bilinearly (antialiased) to ``ref``'s size, with a warning."""
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    node.ctx.warn(f"{port} is {tuple(x.shape[-2:])} but content is {tuple(ref.shape[-2:])}: "
                  f"resized {port} to the content's size (bilinear)")
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)


MIN_SIDE = 16


@register("pis.PhotoWCT")
class PhotoWCT(Node):
    """PhotoWCT stylisation F1 (Li et al. 2018, Eq. 1-3), coarse to fine over relu4_1..relu1_1.

    At each level: encode, whiten the content covariance and colour with the style's, decode
    with max-unpooling (the encoder's switches).

    Optional label maps make the transfer segment-wise: a content label is transferred from the
    same label of the style when both have > 10 pixels and their counts differ < 100x (official
    rule, photo_wct.py). Labels on one side only behave as the official code: content pixels
    whose label the style lacks (or that fails the size rule) keep their content features,
    i.e. pass through unstylised; style labels the content lacks are ignored; if no label
    qualifies, nothing is transferred (with a warning). ``related`` relabels one-sided segments
    first, as the official ADE20K path does with its relation table (:func:`cross_remap`).
    Only one of the two maps connected: global transfer (with a warning). Content and style may
    differ in size (no resize is needed); label maps may have any size (they are resized to each
    feature map with nearest neighbour) and must use the same ids (one label set).
    A style batch of 1 is used for every content image; otherwise the batches pair up.
    """

    version = "2"

    class Params(Params):
        weights: WeightsRef = Field("photowct_default",
                                    description="weights name or .safetensors (official: convert "
                                                "photo_wct.pth with `nodegraph convert photowct`)")
        related: dict[int, list[int]] = Field(
            default_factory=dict,
            description="label id -> related label ids, most related first: a segment on one side "
                        "only takes the first related label the other side has (official ADE20K "
                        "remapping); empty = the official default path (one-sided segments stay "
                        "unstylised)")

    inputs = {
        "content": Image(doc="photo to stylise"),
        "style": Image(doc="style photo"),
        "content_labels": LabelMap(optional=True, doc="segments of the content"),
        "style_labels": LabelMap(optional=True, doc="segments of the style (same label ids)"),
    }
    outputs = {"image": Image()}

    def setup(self) -> None:
        try:
            sd = W.load(self.params.weights, self.ctx.base_dir)
            self.net = PhotoWCTNet(PhotoWCTNet.widths_of(sd))
        except (W.WeightsError, KeyError) as e:
            raise NodeError(f"{self.ctx.node_id or self.type_name}.params.weights: {e}",
                            self.ctx.node_id, "params.weights") from None
        W.load_into(self.net, self.params.weights, self.ctx.base_dir)
        self.net.eval().requires_grad_(False).to(self.device)

    def forward(self, content: torch.Tensor, style: torch.Tensor,
                content_labels: torch.Tensor | None = None,
                style_labels: torch.Tensor | None = None) -> dict[str, Any]:
        n = content.shape[0]
        for port, img in (("content", content), ("style", style)):
            if min(img.shape[-2:]) < MIN_SIDE:
                raise NodeError(f"{port} is {img.shape[-2]}x{img.shape[-1]} px; PhotoWCT needs at least "
                                f"{MIN_SIDE}x{MIN_SIDE} (three 2x poolings, then reflection padding): "
                                "upscale it first (image.Resize)", self.ctx.node_id, port)
        if style.shape[0] not in (1, n):
            raise NodeError(f"style batch {style.shape[0]} must be 1 or match content batch {n}",
                            self.ctx.node_id, "style")
        outs = []
        with torch.no_grad():
            for i in range(n):
                s = style[i if style.shape[0] == n else 0]
                cl, sl, labels = self._labels(content_labels, style_labels, i)
                y = self.net.stylize(content[i:i + 1], s[None], cl, sl, labels,
                                     progress=lambda k, m, i=i: self.ctx.progress(i * m + k, n * m))
                outs.append(y.clamp(0, 1))
        return {"image": torch.cat(outs)}

    def _labels(self, cl: torch.Tensor | None, sl: torch.Tensor | None, i: int):
        if cl is None and sl is None:
            return None, None, None
        if cl is None or sl is None:
            self.ctx.warn("only one of content_labels/style_labels is connected: global transfer")
            return None, None, None
        c = cl[min(i, cl.shape[0] - 1)].cpu().numpy()
        s = sl[min(i, sl.shape[0] - 1)].cpu().numpy()
        if self.params.related:
            c, s = cross_remap(c, s, self.params.related)
        labels = valid_labels(c, s)
        if not labels:
            self.ctx.warn("no content label has a usable counterpart in style_labels (> 10 pixels on "
                          "both sides, counts within 100x): nothing transferred, the content passes "
                          "through (official behaviour); relate labels with params.related or "
                          "disconnect the label maps for a global transfer")
        return torch.from_numpy(c), torch.from_numpy(s), labels


@register("pis.WCT")
class WCT(Node):
    """Whitening-colouring transform on feature tensors (Li et al. 2017, Eq. 3-4).

    Per batch item: N x C x H x W content, N x C x h x w (or 1 x ...) style -> N x C x H x W.
    Content covariance + eps*I, singular values < cut dropped, no alpha blend (PhotoWCT)."""

    version = "1"

    class Params(Params):
        eps: float = Field(CONTENT_COV_EPS, ge=0, description="added to the content covariance")
        cut: float = Field(SMALL_VALUE_CUT, gt=0, description="drop singular values below this")
        alpha: float = Field(1.0, ge=0, le=1, description="blend with the content (1 = PhotoWCT)")

    inputs = {"content": Tensor(rank=4), "style": Tensor(rank=4)}
    outputs = {"features": Tensor(rank=4)}

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, Any]:
        if style.shape[1] != content.shape[1]:
            raise NodeError(f"style has {style.shape[1]} channels, content {content.shape[1]}",
                            self.ctx.node_id, "style")
        outs = []
        for i in range(content.shape[0]):
            c = content[i].float()
            s = style[i if style.shape[0] == content.shape[0] else 0].float()
            f = wct(c.reshape(c.shape[0], -1), s.reshape(s.shape[0], -1), self.params.eps, self.params.cut)
            f = f.reshape(c.shape)
            outs.append(self.params.alpha * f + (1 - self.params.alpha) * c)
        return {"features": torch.stack(outs)}


@register("pis.AffinitySmooth")
class AffinitySmooth(Node):
    """Closed-form photorealistic smoothing F2 (Li et al. 2018, Eq. 5).

    R* = (1 - alpha)(I - alpha S)^-1 Y, S = D^-1/2 W D^-1/2, alpha = 1/(1 + lam), W the matting
    affinity of the content (window radius ``radius``, regulariser ``eps``).

    Solved by CG with an algebraic-multigrid preconditioner (exact to ``rtol``; ``solver:
    direct`` factorises like the official code). The output has the content's size; a
    differently sized ``stylized`` is resized to it first (bilinear), with a warning.
    ``geometry: official`` reproduces FastPhotoStyle's data path instead (uint8 truncation,
    2-px crop / resized content / edge padding): output 4 px smaller per side, as the peer's.
    """

    version = "1"

    class Params(Params):
        lam: float = Field(1e-4, gt=0, description="lambda; alpha = 1/(1+lam) (0.9999 by default)")
        eps: float = Field(1e-7, gt=0, description="matting-affinity regulariser")
        radius: int = Field(1, ge=1, le=3, description="matting window radius (3x3 = 1)")
        solver: Literal["amg", "direct"] = "amg"
        rtol: float = Field(1e-3, gt=0, lt=1, description="CG relative residual per channel")
        tol_levels: float = Field(0.25, ge=0, description="also stop only when the estimated max error "
                                                           "is below this many grey levels (0: off)")
        threads: int = Field(0, ge=0, le=256, description="threads for the solve; 0 = the CPUs free when "
                             "it starts (other running processes counted), shed to 1 if a neighbour "
                             "starts mid-solve")
        geometry: Literal["aligned", "official"] = Field(
            "aligned", description="aligned: paper form, same size out; official: FastPhotoStyle's "
                                   "crop/resize/pad + uint8 truncation, (H-4) x (W-4) out")

    inputs = {"stylized": Image(), "content": Image()}
    outputs = {"image": Image()}

    def forward(self, stylized: torch.Tensor, content: torch.Tensor) -> dict[str, Any]:
        stylized = _match_size(self, stylized, content, "stylized")
        k = 2 * self.params.radius + 1 + (4 if self.params.geometry == "official" else 0)
        if min(content.shape[-2:]) < k:
            self.ctx.warn(f"content {tuple(content.shape[-2:])} is smaller than the {k}x{k} window: "
                          "returned the stylised image unsmoothed")
            return {"image": stylized}
        outs = []
        n = content.shape[0]
        solve = official_geometry_smooth if self.params.geometry == "official" else closed_form_smooth
        p = self.params
        for i in range(n):
            r, _ = solve(_hwc(stylized[i if stylized.shape[0] == n else 0]), _hwc(content[i]), lam=p.lam,
                         eps=p.eps, r=p.radius, solver=p.solver, rtol=p.rtol, tol_levels=p.tol_levels,
                         threads=p.threads,
                         progress=lambda a, b, i=i: self.ctx.progress(i * b + a, n * b))
            outs.append(_chw(np.clip(r, 0, 1), content))
        return {"image": torch.stack(outs)}


@register("pis.GuidedSmooth")
class GuidedSmooth(Node):
    """Fast approximation of F2 with a guided filter (He et al.; FastPhotoStyle --fast).

    Filters the stylised image guided by the content photo, window (2r+1)^2, mirrored borders.

    ``eps`` is in the official call's units: it passes uint8 images to OpenCV, so eps=1e-3 is
    on the 0..255 scale (1.5e-8 on 0..1); set ``eps_scale: unit`` to read eps on 0..1.
    Computed in float64 (OpenCV's float32 statistics break down in flat windows).
    """

    version = "1"

    class Params(Params):
        radius: int = Field(35, ge=1, le=256, description="window radius r")
        eps: float = Field(1e-3, gt=0, description="regulariser")
        eps_scale: Literal["uint8", "unit"] = Field("uint8", description="units of eps: 0..255 or 0..1")

    inputs = {"stylized": Image(), "content": Image()}
    outputs = {"image": Image()}

    def forward(self, stylized: torch.Tensor, content: torch.Tensor) -> dict[str, Any]:
        stylized = _match_size(self, stylized, content, "stylized")
        eps = self.params.eps / (255.0**2) if self.params.eps_scale == "uint8" else self.params.eps
        outs = []
        for i in range(content.shape[0]):
            y = guided_filter(_hwc(content[i]), _hwc(stylized[min(i, stylized.shape[0] - 1)]),
                              self.params.radius, eps)
            outs.append(_chw(np.clip(y, 0, 1), content))
        return {"image": torch.stack(outs)}


from . import distill  # noqa: E402,F401  (registers pis.Encoder, pis.DistillHeads)

__all__ = ["PhotoWCT", "WCT", "AffinitySmooth", "GuidedSmooth", "feature_wct"]
