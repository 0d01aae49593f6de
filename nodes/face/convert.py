"""Convert face-parsing.PyTorch's BiSeNet checkpoint (``79999_iter.pth``) to safetensors.

``nodegraph convert bisenet 79999_iter.pth weights/bisenet_faces.safetensors``

The official file is a plain state_dict saved from the bare network (no ``module.`` prefix);
keys already match :class:`nodes.face.net.BiSeNet`, so conversion is a checked copy: every
key and shape must match, a ``module.`` prefix (DataParallel) or a ``{"state_dict": ...}``
wrapper is stripped. The file is read with ``torch.load(weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

from pathlib import Path

from nodegraph.weights import save_atomic, state_dict_mismatch
from nodes.common.convert import ConversionError, read_state_dict

from .net import BiSeNet


def convert(src: str, dst: str, **options: object) -> Path:
    """Check ``src`` against our BiSeNet (19 classes) and write it as safetensors at ``dst``."""
    if options:
        raise ConversionError(f"the bisenet converter takes no options (got {', '.join(options)})")
    sd = read_state_dict(src)
    own = BiSeNet(19).state_dict()
    parts = state_dict_mismatch(sd, own)
    if parts:
        raise ConversionError(f"{src} is not a face-parsing.PyTorch BiSeNet checkpoint: " + ", ".join(parts))
    state = {k: sd[k].to(own[k].dtype).contiguous() for k in own}
    save_atomic(state, Path(dst), metadata={"source": Path(src).name, "converter": "bisenet",
                                             "classes": "face-parsing.PyTorch 19"})
    return Path(dst)
