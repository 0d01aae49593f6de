"""Converters for the ImageNet backbones users bring themselves (no download at run time).

    nodegraph convert inception pt_inception-2015-12-05-6726825d.pth weights/fid_inception.safetensors
    nodegraph convert vgg16 vgg16-397923af.pth weights/vgg16.safetensors      (see convert_vgg16)

pytorch-fid's release file is a plain state_dict in torchvision's Inception-v3 key layout
(``Conv2d_1a_3x3.conv.weight``, ``Mixed_7c.branch_pool.bn.running_var``, ``fc.weight`` 1008 x
2048; no ``AuxLogits``). The keys are kept as they are (``FIDInceptionV3`` uses the same names);
BatchNorm ``num_batches_tracked`` counters, which do not change the forward, are written as 0
whether or not the file has them. Read with
``torch.load(weights_only=True)``; every key and shape is checked.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nodegraph.weights import save_atomic, state_dict_mismatch
from nodes.common.convert import ConversionError, read_state_dict


def _expected(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


def convert_inception(src: str, dst: str, **options: object) -> str:
    """pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` -> safetensors for
    ``metric.FrechetDistance(features=inception)``."""
    from .inception import FID_CLASSES, FIDInceptionV3

    if options:
        raise ConversionError(f"inception takes no options, got {', '.join(options)}")
    sd = {k: v for k, v in read_state_dict(src).items() if not k.endswith("num_batches_tracked")}
    want = _expected(FIDInceptionV3())
    fc = sd.get("fc.weight")
    if fc is not None and fc.shape[0] != FID_CLASSES:
        raise ConversionError(f"{src}: fc has {fc.shape[0]} classes, the FID Inception has {FID_CLASSES} "
                              f"(torchvision's ImageNet Inception-v3 is a different network; FID needs "
                              f"pytorch-fid's pt_inception-2015-12-05-6726825d.pth)")
    parts = state_dict_mismatch({k: v for k, v in sd.items() if not k.startswith("AuxLogits.")}, want)
    if parts:
        raise ConversionError(f"{src} is not pytorch-fid's FID Inception layout: " + ", ".join(parts))
    out = {k: sd[k].to(torch.float32).contiguous() for k in want}
    out.update({k: torch.zeros((), dtype=torch.int64) for k in FIDInceptionV3().state_dict() if k not in out})
    save_atomic(out, Path(dst), metadata={"node_type": "metric.FrechetDistance", "source": Path(src).name,
                                          "converter": "nodes.features.convert:convert_inception"})
    return f"{len(out)} tensors, {sum(t.numel() for t in out.values()):,} parameters (FID Inception-v3)"


def convert_vgg16(src: str, dst: str, **options: object) -> str:
    """torchvision's ImageNet VGG16 (``vgg16-397923af.pth``) -> safetensors for
    ``loss.Perceptual(backbone=vgg16)``: the 13 convs' ``features.N.weight/bias`` (26 tensors, up
    to relu5_3); the classifier is dropped.

        nodegraph convert vgg16 vgg16-397923af.pth weights/vgg16.safetensors
    """
    from .backbones import VGG16Features

    if options:
        raise ConversionError(f"vgg16 takes no options, got {', '.join(options)}")
    sd = read_state_dict(src)
    want = VGG16Features().state_dict()
    parts = state_dict_mismatch(sd, want, extra_ok=True)  # the file also holds classifier.*
    if parts:
        raise ConversionError(f"{src} is not torchvision's VGG16 layout: " + ", ".join(parts))
    out = {k: sd[k].to(torch.float32).contiguous() for k in want}
    save_atomic(out, Path(dst), metadata={"node_type": "loss.Perceptual", "backbone": "vgg16",
                                          "source": Path(src).name,
                                          "converter": "nodes.features.convert:convert_vgg16"})
    return f"{len(out)} tensors, {sum(t.numel() for t in out.values()):,} parameters (VGG16 features to relu5_3)"
