"""SPADE and StyleGAN2 forwards beside a busy neighbour (issue 19 section 3).

    python benchmarks/neighbour_forward.py [--reps 3] [--neighbours 0 1]

On a 2-core machine a torch op split over 2 threads ends at a barrier that waits for the slower
thread; when another process owns one core, that thread is descheduled for a scheduler slice at
every op. This script measures, each in a fresh process, the inference forwards we ship with
torch's default thread count (2 here), with 1 thread, and with ``threads=0`` — the count
``nodes.pis.multigrid.available_threads`` picks from the CPUs free at that moment — idle and beside
N pure-Python spin loops that the script starts itself (so the condition is known, not whatever
else runs on the machine). Ratios are read within one condition: the same model at 2 threads vs 1.

Models (random weights; the architectures are the shipped ones' shapes or the official ones):
  spade256   spade.Generator's inference path (ade20k preset, ngf 64, 256 x 256, channels-last)
  sg64x8     stylegan2 synthesis, official 64 px architecture (512 channels), batch 8
  sg256x1    stylegan2 synthesis, official 256 px architecture, batch 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODELS = ("spade256", "sg64x8", "sg256x1")


def _build(model: str):
    import torch

    if model == "spade256":
        from nodes.spade.net import PRESETS, build_generator
        from tests.spade.reference import RefGenerator, ref_semantics, voronoi

        cfg = PRESETS["ade20k"]
        torch.manual_seed(0)
        ref = RefGenerator(cfg.semantic_nc, 64, "normal", 256).eval()
        lab = voronoi(1, 256, 256, 24, cfg.label_nc + 1, torch.Generator().manual_seed(1))
        x = ref_semantics(lab, cfg.label_nc, True, None).contiguous(memory_format=torch.channels_last)
        net = build_generator(ref.state_dict(), cfg).to(memory_format=torch.channels_last)
        return lambda: net(x)
    from nodes.stylegan.load import load_generator
    from nodes.stylegan.net import StyleGANConfig
    from tests.stylegan.reference import official_generator_state

    size, batch = (64, 8) if model == "sg64x8" else (256, 1)
    st = official_generator_state(size, 512, 8, 2, 512, seed=0)
    g, _ = load_generator(st, StyleGANConfig(size))
    g.eval().set_mode("auto")
    wp = torch.randn(batch, g.n_latent, 512, generator=torch.Generator().manual_seed(1))
    return lambda: g(wp)


def child(model: str, threads: int, reps: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    from nodes.pis.multigrid import available_threads

    picked = available_threads() if threads == 0 else threads
    torch.set_num_threads(picked)
    fn = _build(model)
    times = []
    with torch.inference_mode():
        t = time.perf_counter()
        fn()  # first call: what a one-shot `nodegraph run` pays
        first = time.perf_counter() - t
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return {"model": model, "threads": threads, "picked": picked, "first_s": first, "best_s": min(times)}


def run_child(model: str, threads: int, reps: int) -> dict:
    cmd = [sys.executable, __file__, "--child", model, str(threads), "--reps", str(reps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--neighbours", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1, 0],
                    help="thread counts to try (0 = the CPUs free at start, available_threads)")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "THREADS"))
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], int(a.child[1]), a.reps)))
        return
    print(f"| neighbours | model | threads (picked) | first call (s) | best of {a.reps} (s) | load avg |")
    print("|---|---|---|---|---|---|")
    for n in a.neighbours:
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
        try:
            time.sleep(1.0)
            for model in a.models:
                for threads in a.threads:
                    r = run_child(model, threads, a.reps)
                    print(f"| {n} | {model} | {threads} ({r['picked']}) | {r['first_s']:.3f} | "
                          f"{r['best_s']:.3f} | {os.getloadavg()[0]:.2f} |", flush=True)
        finally:
            for p in spinners:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
