"""Convert FastPhotoStyle's ``photo_wct.pth`` to safetensors for ``pis.PhotoWCT``.

    nodegraph convert photowct PhotoWCTModels/photo_wct.pth weights/photowct_official.safetensors

The official file is a pickled state_dict of ``PhotoWCT`` (8 modules e1, d1, ..., e4, d4; 80
tensors, 8,349,948 float32 parameters). Our ``PhotoWCTNet`` uses the same module and layer
names, so the mapping is the identity: every key is checked by name and shape, nothing is
transposed or renamed (a ``module.`` prefix from DataParallel is stripped). The file is read
with ``torch.load(weights_only=True)`` -- tensors and containers only, no code execution.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nodegraph.weights import save_atomic, state_dict_mismatch
from nodes.common.convert import ConversionError, read_state_dict

from .photowct import OFFICIAL_WIDTHS, PhotoWCTNet

__all__ = ["ConversionError", "convert", "read_official"]


def read_official(src: str | Path) -> dict[str, torch.Tensor]:
    """The official state_dict, checked against the PhotoWCT layout (names and shapes)."""
    sd = read_state_dict(src)
    want = PhotoWCTNet(OFFICIAL_WIDTHS).state_dict()
    parts = state_dict_mismatch(sd, want)
    if parts:
        raise ConversionError(f"{src} is not FastPhotoStyle's photo_wct.pth layout: " + ", ".join(parts))
    return {k: sd[k].to(torch.float32).contiguous() for k in want}


def convert(src: str, dst: str, **options: object) -> str:
    """Write ``dst`` (.safetensors) from the official ``src``; returns a one-line summary."""
    if options:
        raise ConversionError(f"photowct takes no options, got {', '.join(options)}")
    sd = read_official(src)
    save_atomic(sd, Path(dst), metadata={"node_type": "pis.PhotoWCT", "source": Path(src).name,
                                         "converter": "nodes.pis.convert"})
    n = sum(t.numel() for t in sd.values())
    return f"{len(sd)} tensors, {n:,} parameters"
