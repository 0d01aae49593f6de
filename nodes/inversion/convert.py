"""Converters for the In-Domain GAN Inversion release (genforce/idinvert_pytorch, ``models/pretrain``)
and InterFaceGAN boundaries. All ``.pth`` files are read with ``torch.load(weights_only=True)``
through ``nodes.common.convert``; nothing pickled runs.

    nodegraph convert idinvert-generator styleganinv_ffhq256_generator.pth weights/idinvert_g_ffhq256.safetensors
    nodegraph convert idinvert-encoder   styleganinv_ffhq256_encoder.pth   weights/idinvert_e_ffhq256.safetensors
    nodegraph convert vgg16-idinvert     vgg16.pth                         weights/vgg16_idinvert.safetensors
    nodegraph convert interfacegan-boundary age.npy                        age.safetensors

Key maps (official -> ours); every other key is kept as it is, and any missing, unexpected or
mis-shaped key is an error listing them:

- generator (``stylegan.GeneratorV1``): ``mapping.dense{i}.fc.weight`` -> ``mapping.dense{i}.weight``,
  ``mapping.dense{i}.wscale.bias`` -> ``.bias``; the same two renames under
  ``synthesis.layer{k}.epilogue.style_mod.dense``; ``synthesis.layer{k}.blur.kernel`` (C x 1 x 3 x 3,
  must be the normalised [1 2 1] filter) -> our 3 x 3 kernel; ``synthesis.lod`` (must be 0: a
  fully grown model) and ``truncation.truncation`` (the official loader overwrites it too) dropped;
- encoder (``inversion.Encoder``): identity (our modules keep ``blockK.bn.bn.*``, ``wscale1.bias`` ...);
- VGG16 (``inversion.Perceptual``): ``layer{i}.weight|bias`` -> ``features.{i}.weight|bias`` for the
  convs up to conv4_3 (i <= 21); conv5 (``layer24..28``) dropped;
- boundary: ``{'boundary', 'meta_data'}`` -> tensor ``boundary`` (float32, as stored: 1 x L x D) and
  metadata ``manipulate_layers`` (JSON).

The official weights carry their own licence (MIT code; models trained on FFHQ / LSUN): never bundle them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from nodegraph.weights import save_atomic, state_dict_mismatch

from ..common.convert import ConversionError, read_state_dict
from ..stylegan.net import Blur
from ..stylegan.v1 import BLUR_V1, V1_CHANNELS, GeneratorV1, StyleGANV1Config
from .boundary import UnsafeFileError, read_boundary
from .net import CONV4_3_END, CaffeVGG16, Encoder, EncoderConfig

_DENSE = re.compile(r"^(.*dense\d*)\.(fc\.weight|wscale\.bias)$")


def _no_options(name: str, options: dict[str, Any]) -> None:
    if options:
        raise ConversionError(f"{name} takes no options, got {', '.join(options)}")


def _check_fits(src: str, out: dict[str, torch.Tensor], net: torch.nn.Module, what: str) -> None:
    parts = state_dict_mismatch(out, net.state_dict())
    if parts:
        raise ConversionError(f"{src} is not {what}: " + "; ".join(parts))


def v1_config_of(sd: dict[str, torch.Tensor], src: str = "checkpoint") -> StyleGANV1Config:
    """The ``StyleGANV1Config`` of an official generator state_dict, read from its shapes."""
    try:
        n_mlp = sum(1 for k in sd if re.fullmatch(r"mapping\.dense\d+\.fc\.weight", k))
        z_dim = int(sd["mapping.dense0.fc.weight"].shape[1])
        w_dim = int(sd["truncation.w_avg"].shape[0])
        n_blocks = sum(1 for k in sd if re.fullmatch(r"synthesis\.output\d+\.conv\.weight", k))
        have = {4 * 2 ** b: int(sd[f"synthesis.output{b}.conv.weight"].shape[1]) for b in range(n_blocks)}
    except KeyError as e:
        raise ConversionError(f"{src}: not an IDInvert StyleGAN generator (no key {e})") from None
    size = 4 * 2 ** (n_blocks - 1)
    if size not in V1_CHANNELS or n_mlp == 0:
        raise ConversionError(f"{src}: {n_blocks} output blocks / {n_mlp} mapping layers fit no StyleGAN v1")
    cfg = StyleGANV1Config(size, w_dim=w_dim, z_dim=z_dim, n_mlp=n_mlp, fmaps_max=max(have.values()))
    if {r: cfg.nf(r) for r in have} != have:
        raise ConversionError(f"{src}: channels per resolution {have} are not min(16384 / res, {cfg.fmaps_max})")
    return cfg


def convert_generator(src: str, dst: str, final_tanh: bool = True, **options: Any) -> str:
    """``styleganinv_*_generator.pth`` -> safetensors for ``stylegan.GeneratorV1``.
    ``final_tanh``: the IDInvert models use it (``model_settings.py``); False for a plain StyleGAN v1."""
    _no_options("idinvert-generator", options)
    sd = read_state_dict(src)
    cfg = v1_config_of(sd, src)
    cfg = StyleGANV1Config.from_json({**json.loads(cfg.to_json()), "final_tanh": bool(final_tanh)})
    lod = sd.pop("synthesis.lod", torch.zeros(()))
    if float(lod) != 0:
        raise ConversionError(f"{src}: synthesis.lod = {float(lod)}: a model still growing; only lod 0 converts")
    sd.pop("truncation.truncation", None)
    blur = Blur(BLUR_V1, pad=(1, 1)).kernel
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        m = _DENSE.match(k)
        if m:
            k = f"{m.group(1)}.{'weight' if m.group(2) == 'fc.weight' else 'bias'}"
        elif k.endswith(".blur.kernel"):
            if v.dim() != 4 or not torch.allclose(v[0, 0].float(), blur, atol=1e-6):
                raise ConversionError(f"{src}: {k} is not the normalised [1 2 1] blur")
            v = blur.clone()
        out[k] = v.to(torch.float32).contiguous()
    _check_fits(src, out, GeneratorV1(cfg), f"an IDInvert StyleGAN v1 generator ({cfg})")
    save_atomic(out, Path(dst), metadata={"node_type": "stylegan.GeneratorV1", "config": cfg.to_json(),
                                          "source": Path(src).name, "converter": "nodes.inversion.convert"})
    return f"StyleGAN v1 {cfg.size} px, {cfg.n_latent} W+ codes, fmaps_max {cfg.fmaps_max}, {len(out)} tensors"


def encoder_config_of(sd: dict[str, torch.Tensor], src: str = "checkpoint") -> EncoderConfig:
    """The ``EncoderConfig`` of an official encoder state_dict, read from its shapes."""
    n_blocks = 1 + max((int(m.group(1)) for k in sd if (m := re.match(r"block(\d+)\.", k))), default=-1)
    last = sd.get(f"block{n_blocks - 1}.fc.weight")
    if "block0.conv.weight" not in sd or last is None:
        raise ConversionError(f"{src}: not an IDInvert encoder (no block0.conv.weight / last fc)")
    base = int(sd["block0.conv.weight"].shape[0])
    c_max = max([base] + [int(v.shape[0]) for k, v in sd.items() if re.fullmatch(r"block\d+\.conv2\.weight", k)])
    n_latent = 2 * (n_blocks - 1)
    cfg = EncoderConfig(2 ** n_blocks, int(last.shape[0]) // n_latent, base, c_max)
    if cfg.w_dim * n_latent != last.shape[0]:
        raise ConversionError(f"{src}: last fc has {last.shape[0]} outputs, not n_latent {n_latent} x w_dim")
    return cfg


def convert_encoder(src: str, dst: str, **options: Any) -> str:
    """``styleganinv_*_encoder.pth`` -> safetensors for ``inversion.Encoder`` (identity key map)."""
    _no_options("idinvert-encoder", options)
    sd = {k: v.contiguous() for k, v in read_state_dict(src).items()}
    cfg = encoder_config_of(sd, src)
    net = Encoder(cfg)
    for k, v in net.state_dict().items():  # counters only: written as stored or 0
        if k.endswith("num_batches_tracked"):
            sd.setdefault(k, torch.zeros_like(v))
    out = {k: (v if v.dtype == torch.int64 else v.to(torch.float32)) for k, v in sd.items()}
    _check_fits(src, out, net, f"an IDInvert encoder ({cfg})")
    save_atomic(out, Path(dst), metadata={"node_type": "inversion.Encoder", "config": cfg.to_json(),
                                          "source": Path(src).name, "converter": "nodes.inversion.convert"})
    return f"IDInvert encoder {cfg.size} px -> {cfg.n_latent} x {cfg.w_dim}, channels {cfg.channels()}"


def convert_vgg16(src: str, dst: str, **options: Any) -> str:
    """IDInvert's Keras-converted ``vgg16.pth`` (keys ``layer0.weight`` ..) -> ``inversion.Perceptual``."""
    _no_options("vgg16-idinvert", options)
    sd = read_state_dict(src)
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        m = re.fullmatch(r"layer(\d+)\.(weight|bias)", k)
        if not m:
            raise ConversionError(f"{src}: unexpected key {k!r} (IDInvert's vgg16.pth has layer{{i}}.weight/bias)")
        if int(m.group(1)) < CONV4_3_END:
            out[f"features.{m.group(1)}.{m.group(2)}"] = v.to(torch.float32).contiguous()
    _check_fits(src, out, CaffeVGG16(), "IDInvert's VGG16 (layer0 .. layer21 convs)")
    save_atomic(out, Path(dst), metadata={"node_type": "inversion.Perceptual", "source": Path(src).name,
                                          "converter": "nodes.inversion.convert"})
    return f"VGG16 to conv4_3 (caffe input), {len(out)} tensors"


def convert_boundary(src: str, dst: str, **options: Any) -> str:
    """An InterFaceGAN ``.npy`` boundary -> safetensors ``boundary`` + ``manipulate_layers`` metadata."""
    _no_options("interfacegan-boundary", options)
    try:
        b, meta = read_boundary(src)
    except (UnsafeFileError, FileNotFoundError) as e:
        raise ConversionError(f"{src}: {e}") from None
    layers = [int(i) for i in meta.get("manipulate_layers", [])]
    save_atomic({"boundary": torch.from_numpy(b).contiguous()}, Path(dst),
                metadata={"manipulate_layers": json.dumps(layers), "source": Path(src).name,
                          "converter": "nodes.inversion.convert:convert_boundary"})
    return f"boundary {tuple(b.shape)}, manipulate_layers {layers or 'all'}"
