"""image family: resize, crop, blend with a mask, captioned contact sheets."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont
from pydantic import Field, field_validator

from nodegraph.node import Node, NodeError, Params
from nodegraph.registry import register
from nodegraph.types import Image, LabelMap, Mask, PortType

from .imageio import tensor_to_uint8


def _size(size: int | list[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


@register("image.Resize")
class Resize(Node):
    """Resize an Image (and, when wired, its LabelMap / Mask with nearest / bilinear).

    ``size`` is an int (square) or [height, width]; ``keep_aspect`` fits the shorter side to
    ``size`` instead.
    """

    class Params(Params):
        size: int | list[int] = Field(256, description="int or [height, width]")
        mode: Literal["bilinear", "bicubic", "area", "nearest"] = "bilinear"
        keep_aspect: bool = Field(False, description="scale the shorter side to size (int only)")

        @field_validator("size")
        @classmethod
        def _positive(cls, v: int | list[int]) -> int | list[int]:
            vals = [v] if isinstance(v, int) else v
            if len(vals) not in (1, 2) or any(x < 1 or x > 16384 for x in vals):
                raise ValueError("size must be an int or [height, width] with values in 1..16384")
            return v

    inputs = {"image": Image(optional=True), "labels": LabelMap(optional=True), "mask": Mask(optional=True)}
    outputs = {"image": Image(optional=True), "labels": LabelMap(optional=True), "mask": Mask(optional=True)}
    batch_inputs = ("image", "labels", "mask")

    @classmethod
    def resolve_ports(cls, params: Any, upstream: dict[str, PortType]) -> tuple[dict, dict]:
        ins, outs = dict(cls.inputs), dict(cls.outputs)
        if "labels" in upstream:
            outs["labels"] = upstream["labels"].with_(optional=True)
        return ins, outs

    def target(self, h: int, w: int) -> tuple[int, int]:
        if self.params.keep_aspect and isinstance(self.params.size, int):
            s = self.params.size / min(h, w)
            return max(1, round(h * s)), max(1, round(w * s))
        return _size(self.params.size)

    def forward(self, image: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> dict[str, Any]:
        ref = next((t for t in (image, mask) if t is not None), None)
        hw = ref.shape[-2:] if ref is not None else labels.shape[-2:] if labels is not None else None
        if hw is None:
            raise NodeError(f"{self.ctx.node_id}: wire at least one of image, labels, mask", self.ctx.node_id)
        size = self.target(*hw)
        out: dict[str, Any] = {}
        if image is not None:
            mode = self.params.mode
            kw = {"align_corners": False, "antialias": True} if mode in ("bilinear", "bicubic") else {}
            out["image"] = F.interpolate(image, size=size, mode=mode, **kw).clamp(0, 1)
        if labels is not None:
            out["labels"] = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()
        if mask is not None:
            out["mask"] = F.interpolate(mask, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
        return out


@register("image.Crop")
class Crop(Node):
    """Crop a box (``top``, ``left``, ``height``, ``width``) or, with ``center``, a centred box."""

    class Params(Params):
        top: int = Field(0, ge=0)
        left: int = Field(0, ge=0)
        height: int = Field(256, ge=1)
        width: int = Field(256, ge=1)
        center: bool = Field(False, description="ignore top/left and crop the centre")

    inputs = {"image": Image(optional=True), "labels": LabelMap(optional=True), "mask": Mask(optional=True)}
    outputs = {"image": Image(optional=True), "labels": LabelMap(optional=True), "mask": Mask(optional=True)}
    resolve_ports = Resize.resolve_ports

    def forward(self, **inputs: torch.Tensor | None) -> dict[str, Any]:
        p = self.params
        out = {}
        for name, t in inputs.items():
            if t is None:
                continue
            h, w = t.shape[-2:]
            top, left = ((h - p.height) // 2, (w - p.width) // 2) if p.center else (p.top, p.left)
            if top < 0 or left < 0 or top + p.height > h or left + p.width > w:
                raise NodeError(f"{self.ctx.node_id}.params: box top={top} left={left} {p.height}x{p.width} "
                                f"does not fit the {name} of size {h}x{w}", self.ctx.node_id)
            out[name] = t[..., top:top + p.height, left:left + p.width]
        return out


@register("image.Blend")
class Blend(Node):
    """out = a * (1 - mask) + b * mask (mask resized bilinearly to the images; ``opacity`` scales it)."""

    class Params(Params):
        opacity: float = Field(1.0, ge=0.0, le=1.0)

    inputs = {"a": Image(), "b": Image(), "mask": Mask(optional=True)}
    outputs = {"image": Image()}

    def forward(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, Any]:
        if b.shape[-2:] != a.shape[-2:]:
            b = F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        if mask is None:
            mask = torch.ones_like(a[:, :1])
        elif mask.shape[-2:] != a.shape[-2:]:
            mask = F.interpolate(mask, size=a.shape[-2:], mode="bilinear", align_corners=False)
        m = (mask * self.params.opacity).clamp(0, 1)
        return {"image": (a * (1 - m) + b * m).clamp(0, 1)}


GRID_INPUTS = 8


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: bitmap font
        return ImageFont.load_default()


def contact_sheet(images: list[torch.Tensor], captions: list[str], ncol: int, cell: int,
                  title: str = "", enlarge: bool = True) -> torch.Tensor:
    """Images (each C x H x W) laid out in a grid of cells with a caption under each. Larger
    images are shrunk to the cell (Lanczos); with ``enlarge`` smaller ones are enlarged by the
    largest whole factor that fits, nearest-neighbour (each pixel becomes a k x k block: nothing
    is invented, a 64 px sample in a 192 px cell is shown at 3x instead of a third of the cell)."""
    n = len(images)
    ncol = ncol or min(n, 4)
    rows = math.ceil(n / ncol)
    font_size = max(10, cell // 14)
    cap_h = font_size + 8 if any(captions) else 0
    title_h = font_size + 12 if title else 0
    pad = 4
    W = ncol * (cell + pad) + pad
    H = title_h + rows * (cell + cap_h + pad) + pad
    sheet = PILImage.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font(font_size)
    if title:
        draw.text((pad, 4), title, fill=(0, 0, 0), font=font)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        arr = tensor_to_uint8(img)
        tile = PILImage.fromarray(arr)
        k = cell // max(tile.width, tile.height)
        if enlarge and k >= 2:
            tile = tile.resize((tile.width * k, tile.height * k), PILImage.Resampling.NEAREST)
        tile.thumbnail((cell, cell), PILImage.Resampling.LANCZOS)
        x = pad + c * (cell + pad) + (cell - tile.width) // 2
        y = title_h + pad + r * (cell + cap_h + pad) + (cell - tile.height) // 2
        sheet.paste(tile, (x, y))
        if i < len(captions) and captions[i]:
            ty = title_h + pad + r * (cell + cap_h + pad) + cell + 2
            draw.text((pad + c * (cell + pad) + 2, ty), captions[i][: max(4, cell // (font_size // 2 + 1))],
                      fill=(0, 0, 0), font=font)
    arr = np.asarray(sheet, dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)


@register("image.Grid")
class Grid(Node):
    """A captioned contact sheet of up to eight Image inputs (each may be a batch; every
    image of every batch gets a cell, in input order). ``captions`` label the cells in order."""

    class Params(Params):
        captions: list[str] = Field(default_factory=list, description="one caption per cell, in order")
        ncol: int = Field(0, ge=0, le=64, description="cells per row (0: up to 4)")
        cell: int = Field(192, ge=16, le=2048, description="cell size in pixels")
        title: str = ""
        enlarge: bool = Field(True, description="show images smaller than the cell at the largest whole "
                                                "factor that fits (nearest-neighbour); false: actual size")

    inputs = {f"image{i}": Image(optional=True) for i in range(1, GRID_INPUTS + 1)}
    outputs = {"image": Image()}

    def forward(self, **inputs: torch.Tensor | None) -> dict[str, Any]:
        tiles: list[torch.Tensor] = []
        for i in range(1, GRID_INPUTS + 1):
            t = inputs.get(f"image{i}")
            if t is not None:
                tiles.extend(t.unbind(0))
        if not tiles:
            raise NodeError(f"{self.ctx.node_id}: wire at least one image input", self.ctx.node_id)
        p = self.params
        return {"image": contact_sheet(tiles, p.captions, p.ncol, p.cell, p.title, p.enlarge).to(self.device)}


@register("image.FromMask")
class FromMask(Node):
    """A Mask (N x 1 x H x W in [0, 1]) as a grey Image (N x 3 x H x W), e.g. for ``image.Grid``."""

    inputs = {"mask": Mask()}
    outputs = {"image": Image()}

    def forward(self, mask: torch.Tensor) -> dict[str, Any]:
        return {"image": mask.expand(-1, 3, -1, -1).contiguous()}
