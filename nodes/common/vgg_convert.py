"""Convert torchvision's ImageNet VGG19 (``vgg19-dcbb9e9d.pth``) for ``loss.VGG19``.

    nodegraph convert vgg19 vgg19-dcbb9e9d.pth weights/vgg19.safetensors

Keeps ``features.N.weight/bias`` of the 13 convs up to relu5_1 (26 tensors; features.28 is the
last), drops the last three convs and the classifier. Read with
``torch.load(weights_only=True)``; key names and shapes are checked.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nodegraph.weights import save_atomic, state_dict_mismatch

from .convert import ConversionError, read_state_dict
from .vgg import conv_keys


def convert(src: str, dst: str, **options: object) -> str:
    if options:
        raise ConversionError(f"vgg19 takes no options, got {', '.join(options)}")
    sd = read_state_dict(src)
    want = conv_keys()
    parts = state_dict_mismatch(sd, want, extra_ok=True)  # torchvision's file also holds conv5_2.. and the classifier
    if parts:
        raise ConversionError(f"{src} is not torchvision's VGG19 layout: " + ", ".join(parts))
    out = {k: sd[k].to(torch.float32).contiguous() for k in want}
    save_atomic(out, Path(dst), metadata={"node_type": "loss.VGG19", "source": Path(src).name,
                                          "converter": "nodes.common.vgg_convert"})
    return f"{len(out)} tensors, {sum(t.numel() for t in out.values()):,} parameters (features up to relu5_1)"
