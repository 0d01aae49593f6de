"""Convert an official NVlabs/SPADE ``latest_net_G.pth`` to safetensors.

    nodegraph convert spade latest_net_G.pth weights/spade_ade20k.safetensors --preset ade20k

Key map: identity (our module names mirror the official ones). What changes:

- ``X.weight_orig / X.weight_u / X.weight_v`` (torch spectral norm) -> ``X.weight`` =
  weight_orig / (u . weight_orig v) with the stored u, v: what the official generator computes
  in eval mode (no power iteration at test time);
- ``num_batches_tracked`` is dropped (never incremented by the official SyncBatchNorm);
- the resulting config (preset, ngf, upsampling, VAE, crop size) is stored in the file's
  metadata so ``spade.Generator`` rebuilds the same network.

The official checkpoints are CC BY-NC-SA 4.0: never bundle them; users convert their own copy.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from nodegraph.weights import save_atomic
from nodes.common.convert import read_state_dict

from .net import PRESETS, build_generator, clean_generator_state

OFFICIAL_KEYS = {"normal": 234, "more": 234, "most": 272}


def convert(src: str, dst: str, preset: str = "ade20k", num_upsampling_layers: str | None = None,
            crop_size: int | None = None, aspect_ratio: float | None = None,
            **options: Any) -> dict[str, Any]:
    """Convert ``src`` (official G state_dict) to ``dst`` (.safetensors); returns a summary.

    ``preset`` picks the label convention (ade20k, coco, cityscapes, landscape). For
    cityscapes ``num_upsampling_layers`` (normal/more) cannot be read from the keys; the
    preset default (more) is used unless given.
    """
    if options:
        raise TypeError(f"unknown option(s) for the spade converter: {', '.join(options)} "
                        "(known: preset, num_upsampling_layers, crop_size, aspect_ratio)")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (choose one of {', '.join(PRESETS)})")
    base = PRESETS[preset]
    if num_upsampling_layers:
        base = replace(base, num_upsampling_layers=num_upsampling_layers)
    if crop_size:
        base = replace(base, crop_size=int(crop_size))
    if aspect_ratio:
        base = replace(base, aspect_ratio=float(aspect_ratio))

    raw = read_state_dict(src)
    n_keys = len(raw)
    net = build_generator(raw, base)  # infers ngf/VAE/most and checks every key fits
    state = clean_generator_state(raw)
    cfg = net.cfg
    expected = OFFICIAL_KEYS[cfg.num_upsampling_layers]
    meta = {
        "node_type": "spade.Generator",
        "preset": preset,
        "config": cfg.to_json(),
        "source": Path(src).name,
        "source_keys": str(n_keys),
        "converter": "nodes.spade.convert",
    }
    save_atomic(state, Path(dst), metadata=meta)
    summary = {"dst": str(dst), "preset": preset, "source_keys": n_keys, "official_key_count": expected,
               "tensors": len(state), "config": json.loads(cfg.to_json())}
    if cfg.ngf == 64 and n_keys != expected:
        summary["warning"] = f"{n_keys} keys, the official layout has {expected}"
    return summary
