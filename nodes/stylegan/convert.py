"""Convert rosinality/stylegan2-pytorch checkpoints to safetensors for ``stylegan.Generator`` /
``stylegan.Discriminator``.

    nodegraph convert stylegan2 550000.pt weights/stylegan2_ffhq256.safetensors
    nodegraph convert stylegan2 550000.pt d.safetensors --option which=d

Layouts read (all with ``torch.load(weights_only=True)``; ``argparse.Namespace`` is the only
class allowed beyond tensors and containers, for train.py's ``args``):

- ``train.py`` checkpoints: ``{g, d, g_ema, g_optim, d_optim, args, ada_aug_p}``;
- ``convert_weight.py`` output (official TF weights): ``{g_ema, latent_avg}`` (+ ``g``, ``d``);
- few-shot adaptations (Ojha et al. 2021): ``{g_ema}`` saved from ``nn.DataParallel``, keys
  prefixed ``module.``;
- a bare generator state_dict, or one under ``state_dict``.

Key map: identity (``net.Generator`` mirrors the official module names). What changes:
- a leading ``module.`` is stripped;
- ``noises.noise_*`` missing from checkpoints before Jan 2020 are drawn from ``noise_seed`` (the
  summary says so); any other missing, unexpected or mis-shaped key is an error listing them;
- ``latent_avg`` (w_avg, the truncation centre) is stored 1-D under the key ``latent_avg``: the
  checkpoint's own (convert_weight.py), else the mean of f over 4096 z drawn from ``noise_seed``
  (noted in the summary and the metadata);
- the config (``StyleGANConfig``, read from the shapes and checked against ``args``) goes to the
  metadata key ``config``.

Official checkpoints carry their own licences (FFHQ models: CC BY-NC): never bundle them.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from nodegraph.weights import save_atomic

from ..common.convert import ConversionError, read_checkpoint, strip_module
from .load import LATENT_AVG, infer_config, load_discriminator, load_generator
from .net import StyleGANConfig

SAFE_GLOBALS: list[Any] = [argparse.Namespace]
"""Classes a checkpoint may contain besides tensors and plain containers (train.py ``args``)."""


def pick(raw: dict[str, Any], which: str) -> tuple[dict[str, torch.Tensor], str]:
    """(state_dict of ``which`` = g_ema | g | d, a description of the layout found)."""
    if which in raw and isinstance(raw[which], dict):
        parts = sorted(k for k in raw if not k.startswith("_"))
        layout = ("train.py" if {"g", "d", "args"} <= set(raw) else
                  "convert_weight.py" if "latent_avg" in raw else f"dict with {', '.join(parts)}")
        state = raw[which]
    elif isinstance(raw.get("state_dict"), dict):
        state, layout = raw["state_dict"], "state_dict"
    elif any(k.removeprefix("module.").startswith(("style.", "convs.0.")) for k in raw):
        state, layout = raw, "bare state_dict"
    else:
        raise ConversionError(f"no {which!r} in the checkpoint (top-level keys: {', '.join(map(str, raw))[:200]})")
    if any(k.startswith("module.") for k in state):
        layout += ", DataParallel 'module.' prefix"
    return strip_module(state), layout


def infer_discriminator_config(state: dict[str, torch.Tensor]) -> StyleGANConfig:
    """The config of a discriminator state_dict, read from its shapes."""
    n_res = sum(1 for k in state if k.startswith("convs.") and k.endswith(".conv1.0.weight"))
    if "convs.0.0.weight" not in state or n_res == 0:
        raise ConversionError("not a StyleGAN2 discriminator state_dict (no convs.0.0.weight / ResBlocks)")
    size = 2 ** (n_res + 2)
    have = {size: int(state["convs.0.0.weight"].shape[0])}
    for j in range(1, n_res + 1):
        have[size >> j] = int(state[f"convs.{j}.conv2.1.weight"].shape[0])
    for cm in (2, 1, 4, 8, 3):
        cfg = StyleGANConfig(size, channel_multiplier=cm, channel_max=max(have.values()))
        if cfg.channels() == have:
            return cfg
    raise ConversionError(f"discriminator channels {have} fit no channel table")


def _check_args(cfg: StyleGANConfig, args: Any) -> None:
    """train.py's ``args`` (size, channel_multiplier) must agree with the weights' shapes."""
    size, cm = getattr(args, "size", None), getattr(args, "channel_multiplier", None)
    if size is not None and int(size) != cfg.size:
        raise ConversionError(f"args.size = {size} but the weights are a {cfg.size} px model")
    if cm is not None and StyleGANConfig(cfg.size, channel_multiplier=int(cm),
                                         channel_max=cfg.channel_max).channels() != cfg.channels():
        raise ConversionError(f"args.channel_multiplier = {cm} does not fit the weights' channels {cfg.channels()}")


def convert(src: str, dst: str, which: str = "g_ema", noise_seed: int = 0, lr_mlp: float = 0.01,
            **options: Any) -> str:
    """Convert ``src`` to ``dst`` (.safetensors); returns a one-line summary.

    ``which``: g_ema (default, what everyone samples from), g, or d. ``noise_seed`` seeds noise
    maps an old checkpoint lacks. ``lr_mlp``: the mapping's lr multiplier (official 0.01; not in
    the checkpoint). Raises ConversionError (a ValueError) naming what does not fit.
    """
    if options:
        raise TypeError(f"unknown option(s) for the stylegan2 converter: {', '.join(options)} "
                        "(known: which, noise_seed, lr_mlp)")
    if which not in ("g_ema", "g", "d"):
        raise ConversionError(f"which must be g_ema, g or d, got {which!r}")
    raw = read_checkpoint(src, safe_globals=SAFE_GLOBALS)
    if not isinstance(raw, dict):
        raise ConversionError(f"{src}: expected a dict checkpoint, got {type(raw).__name__}")
    state, layout = pick(raw, which)
    notes: list[str] = []
    try:
        if which == "d":
            cfg = infer_discriminator_config(state)
            out = load_discriminator(state, cfg).state_dict()
            node_type = "stylegan.Discriminator"
        else:
            cfg = infer_config(state, lr_mlp)
            if isinstance(raw.get(LATENT_AVG), torch.Tensor):
                state[LATENT_AVG] = raw[LATENT_AVG]
            net, notes = load_generator(state, cfg, noise_seed, noise_seed)
            out = net.state_dict()
            node_type = "stylegan.Generator"
    except ValueError as e:
        raise ConversionError(f"{src} ({layout}): {e}") from None
    if "args" in raw:
        _check_args(cfg, raw["args"])
        cm = getattr(raw["args"], "channel_multiplier", None)
        if cm is not None:  # equal channel tables (e.g. under a cap): record the one trained with
            cfg = replace(cfg, channel_multiplier=int(cm))
    meta = {"node_type": node_type, "config": cfg.to_json(), "source": Path(src).name, "layout": layout,
            "converter": "nodes.stylegan.convert", "notes": "; ".join(notes)}
    save_atomic(out, Path(dst), metadata=meta)
    n_params = sum(v.numel() for v in out.values())
    return (f"{which} of a {layout} checkpoint: {cfg.size} px, channels {cfg.channels()}, "
            f"{len(out)} tensors, {n_params / 1e6:.1f} M values"
            + ("" if which == "d" else f", {cfg.n_latent} W+ codes")
            + (f"; {'; '.join(notes)}" if notes else ""))
