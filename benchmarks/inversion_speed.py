"""In-domain inversion per-iteration time: our ``inversion.optimize.invert`` against the official
loop structure (genforce/idinvert_pytorch ``utils/inverter.py`` ``invert``) on the same weights.

    python benchmarks/inversion_speed.py [--sizes 64 256] [--steps 4] [--reps 2] [--threads 1]

Networks: the official architectures at each size with seeded random weights (the fidelity tests
show converted official checkpoints load into exactly these modules): ``stylegan.GeneratorV1``
(channels min(16384 / res, 512)), ``inversion.Encoder`` (64 .. 1024 channels, BN) and the caffe
VGG16 to conv4_3. Loss weights 1.0 / 5e-5 / 2.0, Adam lr 0.01, init E(x).

"official" reproduces the loop's structure (research note sec. 5): every network parameter keeps
``requires_grad`` (so each backward also computes and accumulates gradients for all G, E and VGG
weights; ``optimizer.zero_grad`` clears only the code's), and F(x) of the fixed target is
recomputed at every step. "ours" freezes the networks and computes F(x) once. Both start from the
same E(x); the max |w_ours - w_official| after the timed steps is printed (Adam's first steps
are ~lr sign(g), so tiny gradient differences may flip a few entries by up to 2 lr per step).
Cases interleaved, best of ``reps``. "s/iter" is the median time of steps 2..n (steady state,
``--steps`` >= 3); "set-up" is the first step's extra time (E(x) init, and for ours F(x) once).
100 iterations cost about set-up + 100 x s/iter.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nodes.inversion.net import CaffeVGG16, Encoder, EncoderConfig  # noqa: E402
from nodes.inversion.optimize import Weights, invert  # noqa: E402
from nodes.stylegan.v1 import GeneratorV1, StyleGANV1Config  # noqa: E402

LAM = Weights()


def networks(size: int) -> tuple[GeneratorV1, Encoder, CaffeVGG16]:
    torch.manual_seed(0)
    g = GeneratorV1(StyleGANV1Config(size)).eval()
    e = Encoder(EncoderConfig(size)).eval()
    f = CaffeVGG16()
    for p in f.parameters():
        p.data.normal_(0, 0.02)
    return g, e, f


def official_loop(g, e, f, x: torch.Tensor, steps: int, stamp=None) -> torch.Tensor:
    """inverter.py's loop structure: nothing frozen, F(x) every step, backward into every weight."""
    for m in (g, e, f):
        m.requires_grad_(True)
    f.features.requires_grad_(True)
    with torch.no_grad():
        z0 = e(x)
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.01)
    for _ in range(steps):
        rec = g(z)
        loss = LAM.lambda_pix * torch.mean((x - rec) ** 2)
        loss = loss + LAM.lambda_feat * torch.mean((f((x + 1) / 2) - f((rec + 1) / 2)) ** 2)
        loss = loss + LAM.lambda_dom * torch.mean((z - e(rec)) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        stamp()
    for m in (g, e, f):
        m.zero_grad(set_to_none=True)
    return z.detach()


def ours(g, e, f, x: torch.Tensor, steps: int, stamp=None) -> torch.Tensor:
    with torch.no_grad():
        w0 = e(x)
    return invert(g, x, w0, E=e, F=f, weights=LAM, steps=steps, progress=lambda *_: stamp())[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} thread(s), steps {a.steps}, best of {a.reps}")
    print("| size | ours s/iter | official s/iter | ratio | ours set-up s | official set-up s | max abs dw |")
    print("|---|---|---|---|---|---|---|")
    warm = networks(16)  # first-call costs (allocator, kernels) out of the timed runs
    xw = torch.zeros(1, 3, 16, 16)
    ours(*warm, xw, 2, lambda: None), official_loop(*warm, xw, 2, lambda: None)
    for size in a.sizes:
        g, e, f = networks(size)
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
        it = {"ours": float("inf"), "official": float("inf")}
        setup = dict(it)
        codes = {}
        for _ in range(a.reps):
            for name, fn in (("ours", ours), ("official", official_loop)):
                stamps = [time.perf_counter()]
                codes[name] = fn(g, e, f, x, a.steps, lambda s=stamps: s.append(time.perf_counter()))
                gaps = sorted(b - a_ for a_, b in zip(stamps[1:-1], stamps[2:], strict=True))
                it[name] = min(it[name], gaps[len(gaps) // 2])               # median steady-state step
                setup[name] = min(setup[name], stamps[1] - stamps[0] - gaps[len(gaps) // 2])
        dw = (codes["ours"] - codes["official"]).abs().max().item()
        print(f"| {size} | {it['ours']:.3f} | {it['official']:.3f} | {it['ours'] / it['official']:.2f} "
              f"| {setup['ours']:.2f} | {setup['official']:.2f} | {dw:.2e} |", flush=True)


if __name__ == "__main__":
    main()
