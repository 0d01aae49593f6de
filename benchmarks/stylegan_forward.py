"""StyleGAN2 synthesis forward, ours vs the official structure, at 64 and 256 px, batch 1 and 8.

    python benchmarks/stylegan_forward.py [--sizes 64 256] [--batches 1 8] [--reps 3] [--threads 2]

"official" is rosinality's generator as it runs on a CPU, rebuilt from the spec in
tests/stylegan/reference.py (``official_synthesis``): per-sample modulated weights B x out x in x
k x k and one grouped conv per layer (its fused path), ``upfirdn2d_native`` resampling, the
equalised-lr scales applied on every call. "ours" is ``nodes.stylegan.net.Generator`` on the same
official-layout weights (channel_multiplier 2, 512 channels, the official 256 px model and the
64 px one), eval + inference_mode, in each modulation mode (``ModulatedConv2d``): "scaled"
(input x s, shared-weight conv, output x demodulation), "grouped" (per-sample weights, grouped
conv) and "auto" (what stylegan.Generator runs: grouped at batch 1 where the weight is smaller
than the activations, else scaled). Cases interleaved; best of N wall time; max |difference| to
the official output printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nodes.stylegan.load import load_generator  # noqa: E402
from nodes.stylegan.net import StyleGANConfig  # noqa: E402
from tests.stylegan.reference import official_generator_state, official_synthesis  # noqa: E402


def timed(fn) -> tuple[float, torch.Tensor]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bench(size: int, batch: int, reps: int) -> dict[str, float]:
    st = official_generator_state(size, 512, 8, 2, 512, seed=0)
    ours, _ = load_generator(st, StyleGANConfig(size))
    ours.eval()
    wp = torch.randn(batch, ours.n_latent, 512, generator=torch.Generator().manual_seed(1))
    cases = {"official": lambda: official_synthesis(st, size, wp),
             "auto": lambda: ours.set_mode("auto")(wp),
             "scaled": lambda: ours.set_mode("scaled")(wp),
             "grouped": lambda: ours.set_mode("grouped")(wp)}
    best = dict.fromkeys(cases, float("inf"))
    outs: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for name, fn in cases.items():  # warm-up
            outs[name] = fn()
        for _ in range(reps):
            for name, fn in cases.items():
                best[name] = min(best[name], timed(fn)[0])
    res = {k: v for k, v in best.items()}
    for k in ("auto", "scaled", "grouped"):
        res[f"diff_{k}"] = float((outs[k] - outs["official"]).abs().max())
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"threads {a.threads}, best of {a.reps}, load average at start {os.getloadavg()[0]:.2f}")
    print("| size | batch | official (s) | ours auto (s) | ratio | scaled (s) | ratio | grouped (s) | ratio "
          "| max abs diff |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in a.sizes:
        for batch in a.batches:
            r = bench(size, batch, a.reps)
            o = r["official"]
            print(f"| {size} | {batch} | {o:.3f} | " + " | ".join(
                f"{r[k]:.3f} | {r[k] / o:.2f}x" for k in ("auto", "scaled", "grouped"))
                + f" | {max(r['diff_auto'], r['diff_scaled'], r['diff_grouped']):.1e} |", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
