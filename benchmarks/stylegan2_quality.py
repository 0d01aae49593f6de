"""FD-Lite0 of a trained StyleGAN2 generator against held-out procedural portraits, with bounds.

    python benchmarks/stylegan2_quality.py WEIGHTS [--n 400] [--json OUT.json]
    python benchmarks/stylegan2_quality.py WEIGHTS --grid docs/img/stylegan2_faces64.png
        (the README's picture: 8 samples at psi 1.0, the same codes at psi 0.7, 8 held-out real faces)

Sets of ``n`` 64 px images each (FD-Lite0 = Fréchet distance of EfficientNet-Lite0 pooled
features at 224 px, ``nodes.features.frechet``; not FID, not comparable to papers' figures):

- R: real procedural portraits of ``data.Portraits`` seed 1001 (the training graph uses seed 0);
- ``trained``: the generator's samples at truncation 1.0 (z from seed 7, fresh noise maps);
- ``trained psi 0.7``: the same codes with truncation 0.7 around the stored w_avg;
- ``untrained``: the same architecture at its seeded random init (the ceiling);
- ``real``: portraits of a second held-out seed (1002) -- the floor (sampling noise at n).

Small n biases FD upwards (n below the 1280 feature dimensions): compare figures at one n only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nodegraph  # noqa: E402
from nodes.data.portraits import ProceduralPortraits  # noqa: E402
from nodes.features.frechet import FeatureStats, extractor, stats_of  # noqa: E402

BATCH = 25


def real_set(seed: int, n: int) -> list[torch.Tensor]:
    ds = ProceduralPortraits(n, 64, seed)
    return [torch.stack([ds[i]["image"] for i in range(a, min(a + BATCH, n))]) for a in range(0, n, BATCH)]


def generated(params: dict, n: int) -> list[torch.Tensor]:
    node = nodegraph.create("stylegan.Generator", **params)
    node.ctx.emit = lambda *a, **k: None
    g = torch.Generator().manual_seed(7)
    z = torch.randn(n, 512, generator=g)
    out = []
    for a in range(0, n, BATCH):
        node.params.seed = a  # fresh noise maps per batch, reproducible
        out.append(node(z=z[a:a + BATCH])["image"])
    return out


def grid(weights: str, out: str, k: int = 8, scale: int = 2) -> None:
    """Rows: psi 1.0, psi 0.7 (same z, seed 7, fresh noise), held-out real faces (seed 1001)."""
    import numpy as np
    from PIL import Image

    rows = [generated({"weights": weights, "noise": "random"}, k)[0][:k],
            generated({"weights": weights, "noise": "random", "truncation": 0.7}, k)[0][:k],
            real_set(1001, k)[0][:k]]
    img = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)  # 3 x 3*64 x k*64
    arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    pic = Image.fromarray(arr)
    pic.resize((pic.width * scale, pic.height * scale), Image.NEAREST).save(out)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", nargs="?", default="", help="trained generator (omit with --cache to "
                    "precompute only the sets that do not depend on it)")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--json", default=None)
    ap.add_argument("--grid", default=None, help="write the sample picture here instead of measuring")
    ap.add_argument("--cache", default=None, help="folder for the statistics of the sets that do not depend "
                    "on WEIGHTS (reference, floor, untrained), reused by later runs at the same n")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.grid:
        grid(args.weights, args.grid)
        return
    ext = extractor("effnet_lite0")
    t0 = time.time()

    def stats(name: str, make: Any, cached: bool) -> FeatureStats:
        path = Path(args.cache) / f"{name.split(' ')[0]}_{args.n}.safetensors" if (args.cache and cached) else None
        if path is not None and path.is_file():
            return FeatureStats.load(path)
        torch.manual_seed(0)  # the untrained generator's init
        st = stats_of(make(), ext)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            st.save(path)
        return st

    ref = stats("reference", lambda: real_set(1001, args.n), True)
    trained = {"weights": args.weights, "noise": "random"}
    untrained = {"size": 64, "channel_multiplier": 1, "channel_max": 32, "noise": "random"}
    sets = {
        "real (seed 1002, floor)": lambda: real_set(1002, args.n),
        "trained, psi 1.0": lambda: generated(trained, args.n),
        "trained, psi 0.7": lambda: generated({**trained, "truncation": 0.7}, args.n),
        "untrained (random init, ceiling)": lambda: generated(untrained, args.n),
    }
    rows = {}
    for name, make in sets.items():
        if name.startswith("trained") and not args.weights:
            continue
        rows[name] = round(stats(name, make, not name.startswith("trained")).frechet(ref), 2)
        print(f"{name:36s} FD-Lite0 {rows[name]:8.2f}   ({time.time() - t0:.0f} s)", flush=True)
        if args.json:  # after every row: a long run interrupted keeps what it measured
            Path(args.json).write_text(json.dumps({"n": args.n, "weights": args.weights, "fd_lite0": rows,
                                                   "seconds": round(time.time() - t0)}, indent=2))


if __name__ == "__main__":
    main()
