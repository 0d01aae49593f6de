"""Building StyleGAN2 networks from a config and (optionally) a safetensors file.

A generator file holds the rosinality ``Generator`` state_dict (identity key map) plus
``latent_avg`` (D values: the truncation centre w_avg). Its metadata key ``config`` is
``StyleGANConfig.to_json()`` (written by ``nodegraph convert stylegan2``; our training export
records the node's params in the manifest); without either the config is read from the tensor
shapes (``infer_config``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from nodegraph import weights as weights_mod

from .discriminator import Discriminator
from .net import LATENT_AVG, NOISE_PREFIX, Generator, StyleGANConfig


def infer_config(state: dict[str, torch.Tensor], lr_mlp: float = 0.01) -> StyleGANConfig:
    """The config a generator state_dict was made with, read from its shapes. Raises ValueError
    naming the keys when the shapes fit no channel table."""
    try:
        style_dim = int(state["style.1.weight"].shape[1])
        n_mlp = sum(1 for k in state if k.startswith("style.") and k.endswith(".weight"))
        n_rgb = 1 + sum(1 for k in state if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
        have = {4: int(state["conv1.conv.weight"].shape[1])}
        for j in range(n_rgb - 1):
            have[2 ** (j + 3)] = int(state[f"to_rgbs.{j}.conv.weight"].shape[2])
    except KeyError as e:
        raise ValueError(f"not a StyleGAN2 generator state_dict: no key {e}") from None
    size = 2 ** (n_rgb + 1)
    cap = max(have.values())
    for cm in (2, 1, 4, 8, 3):
        try:
            cfg = StyleGANConfig(size, style_dim, n_mlp, cm, cap, lr_mlp)
        except ValueError as e:
            raise ValueError(f"state_dict has {n_rgb} ToRGB layers: {e}") from None
        if cfg.channels() == have:
            return cfg
    raise ValueError(f"channels per resolution {have} fit no channel_multiplier with channel_max {cap}")


CONFIG_FIELDS = ("size", "style_dim", "n_mlp", "channel_multiplier", "channel_max")


def stored_config(ref: str, base_dir: Path | None = None) -> dict[str, Any]:
    """Config fields recorded for a weights reference: the manifest entry's ``config`` (with the
    exporting node's ``params`` unnested), overridden by the file's metadata ``config``."""
    found: dict[str, Any] = dict(weights_mod.manifest_config(ref))
    with safe_open(str(weights_mod.resolve(ref, base_dir)), "pt") as f:
        meta = f.metadata() or {}
    try:
        found.update(json.loads(meta.get("config", "{}")))
    except json.JSONDecodeError:
        pass
    return {k: found[k] for k in (*CONFIG_FIELDS, "lr_mlp") if k in found}


def resolve_config(asked: dict[str, Any], stored: dict[str, Any]) -> StyleGANConfig:
    """Official defaults <- the weights' config <- ``asked`` (explicitly set params). Raises
    ValueError naming the first field where an explicit param contradicts the weights."""
    for k, v in asked.items():
        if k in stored and stored[k] != v:
            raise ValueError(f"params.{k} = {v!r} but the weights were made with {k} = {stored[k]!r}; "
                             "leave it unset to follow the weights")
    merged = {**stored, **asked}
    if "size" not in merged:
        raise ValueError("params.size is needed when there are no weights (or the weights carry no config)")
    return replace(StyleGANConfig(int(merged["size"])), **{k: v for k, v in merged.items() if k != "size"})


def load_generator(state: dict[str, torch.Tensor], cfg: StyleGANConfig | None = None,
                   noise_seed: int = 0, avg_seed: int = 0) -> tuple[Generator, list[str]]:
    """A Generator with ``state`` loaded strictly, and notes on what was filled in.

    Allowed missing: ``noises.*`` (checkpoints before Jan 2020), drawn N(0, 1) from
    ``noise_seed``; ``latent_avg`` (rosinality state_dicts), set to the mean of f over 4096 z
    drawn from ``avg_seed``. Any other missing, unexpected or mis-shaped key raises ValueError
    listing them.
    """
    cfg = cfg or infer_config(state)
    net = Generator(cfg)
    want = net.state_dict()
    missing_noise = [k for k in want if k.startswith(NOISE_PREFIX) and k not in state]
    full = dict(state)
    gen = torch.Generator().manual_seed(noise_seed)
    for k in missing_noise:
        full[k] = torch.randn(want[k].shape, generator=gen)
    no_avg = LATENT_AVG not in full
    full[LATENT_AVG] = want[LATENT_AVG] if no_avg else full[LATENT_AVG].reshape(-1)  # convert_weight: 1 x D
    parts = weights_mod.state_dict_mismatch(full, want)
    if parts:
        raise ValueError(f"the weights do not fit a StyleGAN2 generator with {cfg}: " + "; ".join(parts))
    net.load_state_dict(full)
    notes = [f"{len(missing_noise)} noise buffers missing (old checkpoint): drawn from seed {noise_seed}"] \
        if missing_noise else []
    if no_avg:
        net.latent_avg.copy_(net.mean_latent(4096, torch.Generator().manual_seed(avg_seed))[0])
        notes.append(f"no latent_avg: w_avg = mean of f over 4096 z from seed {avg_seed}")
    return net, notes


def load_discriminator(state: dict[str, torch.Tensor], cfg: StyleGANConfig) -> Discriminator:
    """A Discriminator with ``state`` loaded strictly (ValueError listing the mismatches)."""
    net = Discriminator(cfg)
    parts = weights_mod.state_dict_mismatch(state, net.state_dict())
    if parts:
        raise ValueError(f"the weights do not fit a StyleGAN2 discriminator with {cfg}: " + "; ".join(parts))
    net.load_state_dict(state)
    return net
