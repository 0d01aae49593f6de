"""SPADE generator forward at 256x256 (ade20k preset, ngf 64), ours vs the official structure.

    python benchmarks/spade_forward.py [--size 256] [--reps 3] [--threads 2]

"official" is the independent reference of the official module (tests/spade/reference.py:
torch spectral-norm hooks recompute W / sigma on every forward, as the official G does in
eval mode). "ours" is spade_net.SPADEGenerator built by build_generator from the same
state_dict: spectral norm folded once at load, eval + inference_mode, NCHW and channels-last
(the node's inference path). Same weights, same
inputs; the max |difference| is printed too. Best-of-N wall time, batch 1.
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

from nodes.spade.net import PRESETS, build_generator  # noqa: E402
from tests.spade.reference import RefGenerator, ref_semantics, voronoi  # noqa: E402


def best_of(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = PRESETS["ade20k"]
    torch.manual_seed(0)
    ref = RefGenerator(cfg.semantic_nc, 64, "normal", a.size).eval()
    gen = torch.Generator().manual_seed(1)
    lab = voronoi(1, a.size, a.size, 24, cfg.label_nc + 1, gen)
    sem = ref_semantics(lab, cfg.label_nc, True, None)
    ours = build_generator(ref.state_dict(), cfg)
    ours_cl = build_generator(ref.state_dict(), cfg).to(memory_format=torch.channels_last)
    x_cl = sem.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        want = ref(sem)
        diffs = [float((ours(sem) - want).abs().max()), float((ours_cl(x_cl) - want).abs().max())]
        # interleaved so a neighbour's load on the shared CPU hits all alike
        t = {"ref": float("inf"), "ours": float("inf"), "ours_cl": float("inf")}
        for _ in range(a.reps):
            t["ref"] = min(t["ref"], best_of(lambda: ref(sem), 1))
            t["ours"] = min(t["ours"], best_of(lambda: ours(sem), 1))
            t["ours_cl"] = min(t["ours_cl"], best_of(lambda: ours_cl(x_cl), 1))
    print(f"size {a.size} threads {a.threads}, best of {a.reps}, load average {os.getloadavg()[0]:.2f}")
    print(f"  official structure (SN hooks per forward, NCHW): {t['ref']:.2f} s")
    print(f"  ours, NCHW:                                     {t['ours']:.2f} s  "
          f"({t['ours'] / t['ref']:.2f}x; max |diff| {diffs[0]:.1e})")
    print(f"  ours, channels-last (what spade.Generator runs): {t['ours_cl']:.2f} s  "
          f"({t['ours_cl'] / t['ref']:.2f}x; max |diff| {diffs[1]:.1e})")

if __name__ == "__main__":
    main()
