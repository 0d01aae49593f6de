"""Calibration of inversion.Optimize's face check (nodes/inversion/domain.py) at 64 px.

    python benchmarks/inversion_face_check.py [--n 200]

Prints, per set, the smaller eye's pixel share and the parser's mean confidence, and how many
images the check refuses: held-out procedural faces (data.Portraits seeds 11-13), the same faces
shifted by 20 px and upside down, scikit-image's sample pictures, noise and flat images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import skimage.data as skd
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nodegraph  # noqa: E402
from nodes.inversion import domain  # noqa: E402

PICTURES = ("astronaut", "camera", "cat", "chelsea", "coffee", "rocket", "horse", "brick", "grass", "gravel",
            "checkerboard", "colorwheel", "logo", "moon", "page", "text", "clock", "coins",
            "immunohistochemistry", "hubble_deep_field", "retina")


def picture(name: str) -> torch.Tensor:
    a = np.asarray(getattr(skd, name)())
    a = np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3]
    a = a.astype(np.float32) / (255 if a.dtype == np.uint8 or a.max() > 1 else 1)
    return F.interpolate(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None], size=(64, 64), mode="area")


def row(parser, name: str, x: torch.Tensor) -> None:
    eyes, conf = domain.face_scores(parser, x)
    bad = len(domain.not_faces(parser, x))
    print(f"| {name} | {eyes.min():.4f} - {eyes.max():.4f} | {conf.min():.3f} - {conf.max():.3f} | {bad} of {len(x)} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    parser = domain.load_parser("face_parser_default")
    print(f"criteria: eyes >= {domain.EYE_MIN}, confidence >= {domain.CONF_MIN}\n")
    print("| images | smaller eye share (min - max) | confidence (min - max) | refused |\n|---|---|---|---|")
    for seed in (11, 12, 13):
        x = nodegraph.create("data.Portraits", size=64, count=a.n, seed=seed, batch_size=a.n)()["image"]
        row(parser, f"faces, seed {seed}", x)
        row(parser, f"faces seed {seed} shifted 20 px", x[:50].roll(20, dims=3))
        row(parser, f"faces seed {seed} upside down", x[:50].flip(2))
    for name in PICTURES:
        row(parser, name, picture(name))
    g = torch.Generator().manual_seed(0)
    flat = {"uniform noise": torch.rand(1, 3, 64, 64, generator=g), "flat grey": torch.full((1, 3, 64, 64), 0.5),
            "black": torch.zeros(1, 3, 64, 64), "white": torch.ones(1, 3, 64, 64)}
    for name, x in flat.items():
        row(parser, name, x)


if __name__ == "__main__":
    main()
