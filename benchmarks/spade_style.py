"""Does the VAE style encoder carry the style? Held-out landscapes (data.Landscapes seed 1, unseen
in training), generator ``spade_landscape_vae`` + encoder ``spade_landscape_encoder``.

    python benchmarks/spade_style.py [--n 48] [--size 128]

For each held-out layout i with its rendered picture x_i (one of six times of day, four seasons):

1. Reconstruction: G(labels_i, z = mu(E(x_i))) vs x_i -- mean |difference| (0..255) and PSNR --
   against G(labels_i, z ~ N(0, I)) (the VAE prior: style left to chance) and the non-VAE default
   ``spade_landscape`` (one fixed style per layout).
2. Transfer: the style picture x_j of *another* layout (j = i - 1). For the classes both layouts
   contain (sky, mountain, grass, ...), the distance of each class's mean colour in
   G(labels_i, mu(E(x_j))) to that class's mean colour in x_j (0..255), vs prior z.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nodes.common.labelsets import LANDSCAPE  # noqa: E402
from nodes.data.landscapes import make_landscape  # noqa: E402
from nodes.spade.nodes import Generator, StyleEncoder  # noqa: E402


def quiet(node):
    node.ctx.emit = lambda *a, **k: None
    return node


def class_means(img: torch.Tensor, lab: torch.Tensor) -> dict[int, np.ndarray]:
    return {c: img[:, lab == c].mean(1).numpy() * 255
            for c in range(len(LANDSCAPE.names)) if int((lab == c).sum()) > 20}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--gen", default="spade_landscape_vae")
    ap.add_argument("--enc", default="spade_landscape_encoder")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    torch.set_num_threads(2)
    items = [make_landscape(i, 1, a.size) for i in range(a.n)]
    lab = torch.stack([it["labels"] for it in items])
    img = torch.stack([it["image"] for it in items])
    enc = quiet(StyleEncoder({"weights": a.enc}))
    gen = quiet(Generator({"preset": "landscape", "weights": a.gen, "size": a.size}))
    base = quiet(Generator({"preset": "landscape", "weights": "spade_landscape"}))
    perm = np.roll(np.arange(a.n), 1)  # x_j of the previous layout: a derangement
    with torch.inference_mode():
        mu = torch.cat([enc(image=img[i:i + 8])["mu"] for i in range(0, a.n, 8)])
        g = torch.Generator().manual_seed(0)
        z_prior = torch.randn(mu.shape, generator=g)

        def run(z: torch.Tensor) -> torch.Tensor:
            return torch.cat([gen(labels=lab[i:i + 8], z=z[i:i + 8])["image"] for i in range(0, a.n, 8)])

        rec, pri = run(mu), run(z_prior)
        fixed = torch.cat([base(labels=lab[i:i + 8])["image"] for i in range(0, a.n, 8)])
        trans = run(mu[perm])

    def l1(x: torch.Tensor) -> float:
        return float((x - img).abs().mean() * 255)

    def psnr(x: torch.Tensor) -> float:
        mse = ((x - img) ** 2).mean(dim=(1, 2, 3))
        return float((10 * torch.log10(1 / mse.clamp_min(1e-10))).mean())

    def style_dist(out: torch.Tensor) -> float:
        d = []
        for i in range(a.n):
            j = perm[i]
            mo, ms = class_means(out[i], lab[i]), class_means(img[j], lab[j])
            d += [float(np.abs(mo[c] - ms[c]).mean()) for c in mo if c in ms]
        return float(np.mean(d))

    res = {
        "held_out_layouts": a.n, "size": a.size,
        "reconstruction_l1": {"encoded_style": round(l1(rec), 1), "prior_z": round(l1(pri), 1),
                              "non_vae_default": round(l1(fixed), 1)},
        "reconstruction_psnr_db": {"encoded_style": round(psnr(rec), 2), "prior_z": round(psnr(pri), 2),
                                   "non_vae_default": round(psnr(fixed), 2)},
        "transfer_class_colour_distance_to_style": {"encoded_other_style": round(style_dist(trans), 1),
                                                    "prior_z": round(style_dist(pri), 1)},
    }
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
