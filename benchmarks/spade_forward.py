"""SPADE generator forward at 256x256 (ade20k preset, ngf 64), ours vs the official structure.

    python benchmarks/spade_forward.py [--size 256] [--reps 3] [--threads 2] [--channels-last]

"official" is the independent reference of the official module (tests/spade_reference.py:
torch spectral-norm hooks recompute W / sigma on every forward, as the official G does in
eval mode). "ours" is spade_net.SPADEGenerator built by build_generator from the same
state_dict: spectral norm folded once at load, eval + inference_mode. Same weights, same
inputs; the max |difference| is printed too. Best-of-N wall time, batch 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from spade_reference import RefGenerator, ref_semantics, voronoi  # noqa: E402

from nodes.spade_net import PRESETS, build_generator  # noqa: E402


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
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = PRESETS["ade20k"]
    torch.manual_seed(0)
    ref = RefGenerator(cfg.semantic_nc, 64, "normal", a.size).eval()
    gen = torch.Generator().manual_seed(1)
    lab = voronoi(1, a.size, a.size, 24, cfg.label_nc + 1, gen)
    sem = ref_semantics(lab, cfg.label_nc, True, None)
    ours = build_generator(ref.state_dict(), cfg)
    x = sem
    if a.channels_last:
        ours = ours.to(memory_format=torch.channels_last)
        x = sem.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        want = ref(sem)
        got = ours(x)
        # interleaved so a neighbour's load on the shared CPU hits both alike
        t_ref, t_ours = float("inf"), float("inf")
        for _ in range(a.reps):
            t_ref = min(t_ref, best_of(lambda: ref(sem), 1))
            t_ours = min(t_ours, best_of(lambda: ours(x), 1))
    diff = float((got - want).abs().max())
    print(f"size {a.size} threads {a.threads} channels_last {a.channels_last}: official-structure "
          f"{t_ref:.2f} s, ours {t_ours:.2f} s, ratio {t_ours / t_ref:.2f}x, max |diff| {diff:.2e}")


if __name__ == "__main__":
    main()
