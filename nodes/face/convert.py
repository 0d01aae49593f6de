"""Convert face-parsing.PyTorch's BiSeNet checkpoint (``79999_iter.pth``) to safetensors.

``nodegraph convert bisenet 79999_iter.pth weights/bisenet_faces.safetensors``

The official file is a plain state_dict saved from the bare network (no ``module.`` prefix);
keys already match :class:`nodes.face.net.BiSeNet`, so conversion is a checked copy: every
key and shape must match, a ``module.`` prefix (DataParallel) or a ``{"state_dict": ...}``
wrapper is stripped. The file is read with ``torch.load(weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nodegraph.weights import save_atomic, state_dict_mismatch
from nodes.face.net import BiSeNet


def _unwrap(raw: object) -> dict[str, torch.Tensor]:
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise ValueError(f"expected a state_dict, got {type(raw).__name__}")
    out = {}
    for k, v in raw.items():
        if isinstance(v, torch.Tensor):
            out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def convert(src: str, dst: str, **options: object) -> Path:
    """Check ``src`` against our BiSeNet (19 classes) and write it as safetensors at ``dst``."""
    if options:
        raise ValueError(f"the bisenet converter takes no options (got {', '.join(options)})")
    sd = _unwrap(torch.load(src, map_location="cpu", weights_only=True))
    own = BiSeNet(19).state_dict()
    parts = state_dict_mismatch(sd, own)
    if parts:
        raise ValueError(f"{src} is not a face-parsing.PyTorch BiSeNet checkpoint: " + ", ".join(parts))
    state = {k: sd[k].to(own[k].dtype).contiguous() for k in own}
    save_atomic(state, Path(dst), metadata={"source": Path(src).name, "converter": "bisenet",
                                             "classes": "face-parsing.PyTorch 19"})
    return Path(dst)
