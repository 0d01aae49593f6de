"""A captioned contact sheet: Image tiles in a grid, each with its caption lines beneath.

Generic over Image values (3 x H x W in [0, 1]); tiles are resized to the first one's size.
Written atomically as PNG.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .fsutil import publish

LINE = 12  # px per caption line (PIL's default bitmap font is 11 px tall)
MIN_SIDE = 96


def contact_sheet(tiles: list[torch.Tensor], captions: list[str], path: str | Path, ncol: int = 0,
                  pad: int = 6) -> Path:
    """Tile ``tiles`` (each 3 x H x W in [0, 1]) with ``captions`` under them into ``path``."""
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    if not tiles:
        raise ValueError("contact_sheet needs at least one tile")
    h, w = tiles[0].shape[-2:]
    up = max(1, math.ceil(MIN_SIDE / min(h, w)))  # tiny tiles are shown enlarged (nearest)
    ncol = ncol or math.ceil(math.sqrt(len(tiles)))
    nrow = math.ceil(len(tiles) / ncol)
    lines = max(c.count("\n") + 1 for c in captions) if captions else 0
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(PILImage.new("RGB", (1, 1)))
    text_w = max((probe.textlength(line, font=font) for c in captions for line in c.splitlines()), default=0)
    cell_h, cell_w = h * up + lines * LINE + pad, max(w * up, math.ceil(text_w)) + pad
    sheet = PILImage.new("RGB", (ncol * cell_w + pad, nrow * cell_h + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, t in enumerate(tiles):
        t = t.float().clamp(0, 1)
        if tuple(t.shape[-2:]) != (h, w):
            t = F.interpolate(t[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0]
        if up > 1:
            t = F.interpolate(t[None], scale_factor=up, mode="nearest")[0]
        arr = (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        r, c = divmod(i, ncol)
        x, y = pad + c * cell_w, pad + r * cell_h
        sheet.paste(PILImage.fromarray(arr), (x, y))
        for k, line in enumerate((captions[i] if i < len(captions) else "").splitlines()):
            draw.text((x, y + h * up + 1 + k * LINE), line, fill=(0, 0, 0), font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        sheet.save(tmp, format="PNG")
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
