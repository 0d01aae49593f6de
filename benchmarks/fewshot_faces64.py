"""Few-shot adaptation of stylegan2_faces64 (graphs/fewshot_adapt.json): helper commands.

    python benchmarks/fewshot_faces64.py extract-d CKPT OUT.safetensors
        the discriminator of a stylegan2_train.json checkpoint (``param/disc/*``) as weights with
        its config, for ``disc.weights`` (Ojha et al. start D_t from the source D)
    python benchmarks/fewshot_faces64.py fd WEIGHTS --style sketch [--n 200] [--source stylegan2_faces64]
        FD-Lite0 of n generated images vs n target-domain images (data.Portraits style, seed 1001),
        for the adapted G_t and for the unadapted G_s against the same target set, plus a floor
        (a second target set, seed 1002); JSON on stdout
    python benchmarks/fewshot_faces64.py grid OUT.png --rows stylegan2_faces64 A.safetensors B.safetensors
        one row per generator, the same z (seed 3) and noise in every row

FD-Lite0 = Fréchet distance of EfficientNet-Lite0 pooled features at 224 px (nodes.features);
not FID. Small n biases FD upwards (n is below the 1280 feature dimensions): compare at one n.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nodegraph  # noqa: E402
from nodegraph.weights import save_atomic  # noqa: E402
from nodes.data.portraits import ProceduralPortraits  # noqa: E402

BATCH = 25
D_CONFIG = {"size": 64, "channel_multiplier": 1, "channel_max": 32}


def extract_d(ckpt: str, out: str) -> None:
    with safe_open(ckpt, "pt") as f:
        state = {k[len("param/disc/"):]: f.get_tensor(k) for k in f.keys() if k.startswith("param/disc/")}
    if not state:
        raise SystemExit(f"{ckpt} holds no param/disc/* tensors")
    meta = {"node_type": "stylegan.Discriminator", "source": str(ckpt),
            "config": json.dumps(D_CONFIG)}
    save_atomic(state, Path(out), metadata=meta)
    print(f"{len(state)} tensors -> {out}")


def target_set(style: str, seed: int, n: int) -> list[torch.Tensor]:
    ds = ProceduralPortraits(n, 64, seed, style=style)
    return [torch.stack([ds[i]["image"] for i in range(a, min(a + BATCH, n))]) for a in range(0, n, BATCH)]


def generated(weights: str, n: int, zseed: int = 7) -> list[torch.Tensor]:
    node = nodegraph.create("stylegan.Generator", weights=weights, noise="random")
    node.ctx.emit = lambda *a, **k: None
    z = torch.randn(n, 512, generator=torch.Generator().manual_seed(zseed))
    out = []
    for a in range(0, n, BATCH):
        node.params.seed = a  # fresh noise maps per batch, reproducible
        out.append(node(z=z[a:a + BATCH])["image"])
    return out


def fd(args: argparse.Namespace) -> None:
    from nodes.features.frechet import extractor, stats_of

    torch.set_num_threads(1)
    ext = extractor("effnet_lite0")
    t0 = time.time()
    ref = stats_of(target_set(args.style, 1001, args.n), ext)
    rows = {}
    for name, make in ((f"adapted G_t ({args.weights})", lambda: generated(args.weights, args.n)),
                       (f"unadapted G_s ({args.source})", lambda: generated(args.source, args.n)),
                       ("target floor (seed 1002)", lambda: target_set(args.style, 1002, args.n))):
        rows[name] = round(stats_of(make(), ext).frechet(ref), 2)
        print(f"{name:60s} FD-Lite0 {rows[name]:8.2f} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    print(json.dumps({"n": args.n, "style": args.style, "reference": f"data.Portraits style={args.style} "
                      "seed 1001, 64 px", "fd_lite0": rows, "seconds": round(time.time() - t0)}, indent=2))


def grid(args: argparse.Namespace) -> None:
    import cv2

    rows = []
    z = torch.randn(args.count, 512, generator=torch.Generator().manual_seed(3))
    for w in args.rows:
        node = nodegraph.create("stylegan.Generator", weights=w, noise="random", seed=0)
        node.ctx.emit = lambda *a, **k: None
        img = node(z=z)["image"].detach()
        img = torch.nn.functional.pad(img, (1, 1, 1, 1), value=1.0)
        rows.append(torch.cat(list(img), 2))
    g = torch.cat(rows, 1).permute(1, 2, 0).numpy()
    g = cv2.resize(g, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(args.out, (g[..., ::-1] * 255).round().astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{len(rows)} rows x {args.count} -> {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract-d")
    e.add_argument("ckpt")
    e.add_argument("out")
    f = sub.add_parser("fd")
    f.add_argument("weights")
    f.add_argument("--style", required=True, choices=["sketch", "caricature", "photo"])
    f.add_argument("--n", type=int, default=200)
    f.add_argument("--source", default="stylegan2_faces64")
    g = sub.add_parser("grid")
    g.add_argument("out")
    g.add_argument("--rows", nargs="+", required=True)
    g.add_argument("--count", type=int, default=8)
    g.add_argument("--scale", type=int, default=2)
    args = ap.parse_args()
    if args.cmd == "extract-d":
        extract_d(args.ckpt, args.out)
    elif args.cmd == "fd":
        fd(args)
    else:
        grid(args)


if __name__ == "__main__":
    main()
