"""Dual-domain synthesis: time per iteration of one optimisation pass (D1), ours
(``dualdomain.LatentOptimize``'s ``losses.PassLoss`` + ``optimize.run_pass``) against the official
loop structure re-built here from the spec (denabazazian/Dual-Domain-Synthesis ``DDS_main.py``,
research note anchor-inversion-dualdomain.md sec. 3 and 5), same generator weights, same
backbone, same sizes.

    python benchmarks/dualdomain_speed.py [--backbones effnet_lite0 vgg16] [--steps 12 4] [--reps 2]
                                          [--full] [--threads 1]

Generator: the shipped ``stylegan2_faces64`` (64 px, 10 layer codes); the pass is D1 with x_s
(psi 0.7), x_t = x_s mirrored (any fixed pair costs the same), one rectangular mask. Perceptual
size 256 (official). Backbones: ``effnet_lite0`` (our default, ImageNet weights) and ``vgg16``
(the official relu1_1 / 1_2 / 3_2 / 4_2 slices on seeded random weights: the cost does not
depend on the weights, and none are shipped).

"official" keeps the released loop's structure: every generator weight and the noise maps keep
``requires_grad`` (each backward computes gradients for all of them), the perceptual helper
upsamples both images and the mask and runs the backbone on x_hat AND on the constant target,
once per term (4 backbone forwards per step, 2 of them constant), the masks are float64, the
noise is re-normalised after every step. "ours" freezes the networks, runs the backbone once per
step on x_hat (the targets' maps and masks computed once per pass) in float32. Both start from
the same mean code with the same noise. Cases interleaved, best of ``reps``; "s/iter" is the
median of steps 2..n. A 1,000-iteration pass costs about 1,000 x s/iter (``--full`` also times
ours for 1,000 iterations end to end). The machine's load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nodegraph  # noqa: E402
from nodes.common.autograd import autograd_ready  # noqa: E402
from nodes.dualdomain.losses import OFFICIAL_CUTS, OfficialVGG16, PassLoss, as_backbone  # noqa: E402
from nodes.dualdomain.optimize import mean_code, normalize_noise_, run_pass  # noqa: E402

PSIZE = 256


def backbone(name: str) -> torch.nn.Module:
    if name == "effnet_lite0":
        from nodes.features.net import Lite0Features, load_pretrained

        return Lite0Features(load_pretrained())
    from nodes.features.backbones import VGG16Features

    torch.manual_seed(0)
    return OfficialVGG16(VGG16Features().features, OFFICIAL_CUTS)


def setup(size_seed: int = 0):
    gen = nodegraph.create("stylegan.Generator", weights="stylegan2_faces64", truncation=0.7)
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(size_seed))
    with torch.no_grad():
        x_s = gen(z=z)["raw"]
    G = autograd_ready(gen.net)
    x_t = x_s.flip(-1)
    res = x_s.shape[-1]
    y = np.zeros((res, res))
    y[res // 4: 3 * res // 4, res // 5: 4 * res // 5] = 1.0
    w0 = mean_code(G, 10000, 0)
    noise = G.make_noise(1, torch.Generator().manual_seed(1))
    normalize_noise_(noise)  # both loops then use the same maps at every step (official: from step 1)
    return G, x_s, x_t, y, w0, noise


def official_masked_perceptual(feats, synth, img, mask, res):
    """The official helper's structure: both images and the mask upsampled by a scale factor,
    the backbone run on both, the mask resized x1 / x0.25 / x0.5 along the slices."""
    up = torch.nn.Upsample(scale_factor=PSIZE / res, mode="bilinear")
    ref, out = feats(up(img)), feats(up(synth))
    m = up(mask)
    loss = 0
    for r, s in zip(ref, out, strict=True):
        if m.shape[-2:] != s.shape[-2:]:
            m = F.interpolate(m, size=s.shape[-2:], mode="bilinear")
        mm = m.expand(1, *s.shape[1:])
        loss = loss + F.mse_loss(s * mm, r * mm)
    return loss


def official_pass(G, feats, x_s, x_t, y_np, w0, noise, steps, stamps):
    """Pass D1 with the released loop's structure (module docstring); appends a time per step."""
    G.requires_grad_(True)
    res = x_s.shape[-1]
    x_s, x_t = x_s.clone().clamp_(-1, 1), x_t.clone().clamp_(-1, 1)
    y_s = torch.from_numpy(y_np)[None, None]  # float64, as ToTensor of a numpy mask
    y_t = y_s.clone()
    m_out = 1 - y_s
    xover = (x_s * m_out + x_t * y_t).clamp_(-1, 1)
    w = w0.detach().clone().requires_grad_(True)
    noises = [n.detach().clone().requires_grad_(True) for n in noise]
    opt = torch.optim.Adam([w], lr=0.01)
    for _ in range(steps):
        t = time.perf_counter()
        synth = G.synthesis(w, noises)[0]
        p_s = official_masked_perceptual(feats, synth, x_s, m_out, res)
        p_t = official_masked_perceptual(feats, synth, x_t, y_s, res)
        e_out, e_in = m_out.expand(1, 3, res, res), y_s.expand(1, 3, res, res)
        loss = (2 * (p_t + p_s) + F.mse_loss(synth * e_out, x_s * e_out) + F.mse_loss(synth * e_in, x_t * e_in)
                + 3 * F.mse_loss(synth.float(), xover.float()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        for n in noises:
            n.data.add_(-n.mean()).div_(n.std())
        stamps.append(time.perf_counter() - t)
    G.requires_grad_(False)
    return w.detach()


def ours_pass(G, feats, x_s, x_t, y_np, w0, noise, steps, stamps):
    t0 = [time.perf_counter()]

    def tick(i, n, v):
        now = time.perf_counter()
        stamps.append(now - t0[0])
        t0[0] = now

    y = torch.from_numpy(y_np).float()[None, None]
    loss = PassLoss(feats, x_s, x_t, y, y, "D1", PSIZE)
    stamps.append(time.perf_counter() - t0[0])  # set-up: the targets' maps, once
    t0[0] = time.perf_counter()
    w, _, _ = run_pass(G, loss, w0, noise, iterations=steps, every=0, progress=tick)
    return w


def median_step(stamps: list[float]) -> float:
    return statistics.median(stamps[1:]) if len(stamps) > 1 else stamps[0]


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbones", nargs="+", default=["effnet_lite0", "vgg16"])
    ap.add_argument("--steps", nargs="+", type=int, default=[12, 4], help="timed steps per backbone")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="also time ours for 1,000 iterations (effnet_lite0)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"load average before: {load()}  (threads {a.threads}, torch {torch.__version__})")
    G, x_s, x_t, y, w0, noise = setup()
    rows = []
    for i, name in enumerate(a.backbones):
        steps = a.steps[min(i, len(a.steps) - 1)]
        net = backbone(name)
        feats = as_backbone(net)
        best = {"ours": float("inf"), "official": float("inf")}
        for _ in range(a.reps):
            for case, fn in (("ours", ours_pass), ("official", official_pass)):
                stamps: list[float] = []
                w = fn(G, feats, x_s, x_t, y, w0, noise, steps, stamps)
                per = median_step(stamps[1:] if case == "ours" else stamps)
                best[case] = min(best[case], per)
                print(f"  {name:13s} {case:8s} {steps} steps: {per:.3f} s/iter  (load {load()})", flush=True)
                if case == "ours":
                    w_ours = w
            print(f"  max |w_ours - w_official| = {(w_ours - w).abs().max():.2e} (compat clean: no clamp, fp32)")
        y_t = torch.from_numpy(y)[None, None].float()
        same = PassLoss(feats, x_s, x_t, y_t, y_t, "D1", PSIZE, official=True)
        w_same, _, _ = run_pass(G, same, w0, noise, iterations=steps, every=0, compat="official")
        print(f"  re-build check: ours with compat official vs the official structure after {steps} steps: "
              f"max |dw| = {(w_same - w).abs().max():.2e}")
        ratio = best["official"] / best["ours"]
        rows.append((name, best["ours"], best["official"], ratio))
    if a.full:
        net = backbone("effnet_lite0")
        stamps = []
        t = time.perf_counter()
        ours_pass(G, as_backbone(net), x_s, x_t, y, w0, noise, 1000, stamps)
        print(f"ours, effnet_lite0, 1,000 iterations end to end: {time.perf_counter() - t:.1f} s (load {load()})")
    print(f"load average after: {load()}")
    print("\n| backbone | ours s/iter | official s/iter | speed-up (target >= 2x) | 1,000 iterations ours / official |")
    print("|---|---|---|---|---|")
    for name, o, f, r in rows:
        print(f"| {name} | {o:.3f} | {f:.3f} | **{r:.2f}x** | {o * 1000 / 60:.1f} / {f * 1000 / 60:.1f} min |")


if __name__ == "__main__":
    main()
