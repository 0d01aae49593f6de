"""Metric nodes (family ``metric``): Scalar ``value`` outputs usable in run graphs (reports)
and train graphs (``train.metrics``, logged without gradient). Higher is better for all four.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from nodegraph.node import Node, NodeError, Params
from nodegraph.registry import register
from nodegraph.types import Image, LabelMap, Scalar, Tensor, get_label_set


def _same_size(a: torch.Tensor, b: torch.Tensor, who: str) -> None:
    if a.shape != b.shape:
        raise NodeError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}", who)


@register("metric.PSNR")
class PSNR(Node):
    """Peak signal-to-noise ratio 10 log10(R^2 / MSE) in dB, per image, averaged over the batch."""

    class Params(Params):
        data_range: float = Field(1.0, gt=0, description="R: 1 for [0, 1] images")

    inputs = {"a": Image(), "b": Image()}
    outputs = {"value": Scalar(), "per_image": Tensor(rank=1)}

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
        _same_size(a, b, self.ctx.node_id or self.type_name)
        mse = ((a.float() - b.float()) ** 2).flatten(1).mean(1).clamp(min=1e-12)
        per = 10 * torch.log10(self.params.data_range ** 2 / mse)
        return {"value": per.mean(), "per_image": per}


def _gauss(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


@register("metric.SSIM")
class SSIM(Node):
    """Structural similarity (Wang et al. 2004): mean over pixels and channels of
    ((2 mu_a mu_b + C1)(2 sigma_ab + C2)) / ((mu_a^2 + mu_b^2 + C1)(sigma_a^2 + sigma_b^2 + C2)),
    Gaussian window 11 / sigma 1.5, C1 = (0.01 R)^2, C2 = (0.03 R)^2, valid region only."""

    class Params(Params):
        data_range: float = Field(1.0, gt=0)
        window: int = Field(11, ge=3, le=31)
        sigma: float = Field(1.5, gt=0)

    inputs = {"a": Image(), "b": Image()}
    outputs = {"value": Scalar(), "per_image": Tensor(rank=1)}

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
        _same_size(a, b, self.ctx.node_id or self.type_name)
        a, b = a.float(), b.float()
        c = a.shape[1]
        win = min(self.params.window, a.shape[-1], a.shape[-2])
        g = _gauss(win, self.params.sigma, a.device)
        k = (g[:, None] * g[None, :]).expand(c, 1, win, win).contiguous()

        def filt(x: torch.Tensor) -> torch.Tensor:
            return F.conv2d(x, k, groups=c)

        mu_a, mu_b = filt(a), filt(b)
        saa = filt(a * a) - mu_a ** 2
        sbb = filt(b * b) - mu_b ** 2
        sab = filt(a * b) - mu_a * mu_b
        c1 = (0.01 * self.params.data_range) ** 2
        c2 = (0.03 * self.params.data_range) ** 2
        s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
        per = s.flatten(1).mean(1)
        return {"value": per.mean(), "per_image": per}


class _SegParams(Params):
    ignore_index: int | None = Field(None, description="label id excluded (default: the label set's)")
    classes: int | None = Field(None, ge=1, description="number of classes (default: from the label set)")


def _prediction(pred: torch.Tensor | None, logits: torch.Tensor | None, who: str) -> torch.Tensor:
    if pred is not None:
        return pred
    if logits is not None:
        return logits.argmax(1)
    raise NodeError("give either 'pred' (a label map) or 'logits' (N x K x H x W)", who)


def _ignore(node: Node) -> int | None:
    if node.params.ignore_index is not None:
        return node.params.ignore_index
    port = getattr(node.ctx, "input_types", {}).get("target")
    name = getattr(port, "label_set", None)
    if name:
        try:
            return get_label_set(name).ignore_index
        except KeyError:
            return None
    return None


@register("metric.PixelAccuracy")
class PixelAccuracy(Node):
    """Fraction of (non-ignored) pixels whose predicted class equals the target class."""

    Params = _SegParams
    inputs = {"target": LabelMap(), "pred": LabelMap(optional=True), "logits": Tensor(rank=4, optional=True)}
    outputs = {"value": Scalar()}

    def forward(self, target: torch.Tensor, pred: torch.Tensor | None = None,
                logits: torch.Tensor | None = None) -> dict[str, Any]:
        p = _prediction(pred, logits, self.ctx.node_id or self.type_name)
        _same_size(p, target, self.ctx.node_id or self.type_name)
        valid = torch.ones_like(target, dtype=torch.bool)
        ign = _ignore(self)
        if ign is not None:
            valid = target != ign
        n = valid.sum().clamp(min=1)
        return {"value": ((p == target) & valid).sum().float() / n}


@register("metric.MeanIoU")
class MeanIoU(Node):
    """Mean over classes of |pred = c and target = c| / |pred = c or target = c|, over the whole
    batch; classes absent from both are left out of the mean."""

    Params = _SegParams
    inputs = {"target": LabelMap(), "pred": LabelMap(optional=True), "logits": Tensor(rank=4, optional=True)}
    outputs = {"value": Scalar(), "per_class": Tensor(rank=1)}

    def _classes(self, p: torch.Tensor, t: torch.Tensor) -> int:
        if self.params.classes:
            return self.params.classes
        port = getattr(self.ctx, "input_types", {}).get("target")
        name = getattr(port, "label_set", None)
        if name:
            try:
                return len(get_label_set(name))
            except KeyError:
                pass
        return int(max(int(p.max()), int(t.max()))) + 1

    def forward(self, target: torch.Tensor, pred: torch.Tensor | None = None,
                logits: torch.Tensor | None = None) -> dict[str, Any]:
        who = self.ctx.node_id or self.type_name
        p = _prediction(pred, logits, who)
        _same_size(p, target, who)
        k = self._classes(p, target)
        ign = _ignore(self)
        valid = (target != ign) if ign is not None else torch.ones_like(target, dtype=torch.bool)
        valid &= (target >= 0) & (target < k) & (p >= 0) & (p < k)
        conf = torch.bincount((target[valid] * k + p[valid]).flatten(), minlength=k * k).view(k, k).float()
        inter = conf.diag()
        union = conf.sum(0) + conf.sum(1) - inter
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, float("nan")))
        present = union > 0
        value = iou[present].mean() if bool(present.any()) else torch.tensor(0.0, device=p.device)
        return {"value": value, "per_class": iou}
