"""Shared fixtures: an official-layout StyleGAN2 (32 px, 32 channels, seeded random weights) and
its checkpoints written in every layout the converter reads."""

from __future__ import annotations

import argparse

import pytest
import torch

from tests.stylegan.reference import official_discriminator_state, official_generator_state

SIZE, CAP = 32, 32


@pytest.fixture(scope="session")
def official():
    """(generator state, discriminator state, latent_avg) in rosinality's layout."""
    g = official_generator_state(SIZE, 512, 8, 2, CAP, seed=0)
    d = official_discriminator_state(SIZE, 2, CAP, seed=1)
    latent_avg = torch.randn(512, generator=torch.Generator().manual_seed(2)) * 0.5
    return g, d, latent_avg


def _adam_state(state: dict[str, torch.Tensor]) -> dict:
    params = [torch.nn.Parameter(v.clone()) for k, v in state.items() if "noise_" not in k and "kernel" not in k]
    opt = torch.optim.Adam(params, lr=0.002, betas=(0.0, 0.99))
    return opt.state_dict()


@pytest.fixture(scope="session")
def checkpoints(official, tmp_path_factory):
    """Paths of .pt files in each layout: train, convert_weight, dataparallel, old (no noises)."""
    g, d, latent_avg = official
    root = tmp_path_factory.mktemp("stylegan_ckpt")
    args = argparse.Namespace(size=SIZE, channel_multiplier=2, r1=10.0, path_regularize=2.0, mixing=0.9,
                              batch=4, iter=800000, ckpt=None, augment=False, lr=0.002)
    layouts = {
        "train": {"g": g, "d": d, "g_ema": g, "g_optim": _adam_state(g), "d_optim": _adam_state(d),
                  "args": args, "ada_aug_p": 0.0},
        "convert_weight": {"g_ema": g, "latent_avg": latent_avg},
        "dataparallel": {"g_ema": {f"module.{k}": v for k, v in g.items()}},
        "old": {"g_ema": {k: v for k, v in g.items() if not k.startswith("noises.")}, "latent_avg": latent_avg},
    }
    paths = {}
    for name, obj in layouts.items():
        paths[name] = root / f"{name}.pt"
        torch.save(obj, paths[name])
    return paths
