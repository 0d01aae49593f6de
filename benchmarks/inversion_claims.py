"""The IDInvert paper's claims, measured on held-out procedural faces (issue 15, "Must show").

    python benchmarks/inversion_claims.py [--n 16] [--steps 100] [--real 200] [--out runs/inversion_claims.md]

Needs ``stylegan2_faces64`` and ``idinvert_encoder_faces64`` (or NODEGRAPH_WEIGHTS naming stand-ins;
``--generator`` / ``--encoder`` other names). Three inversions of the same ``--n`` held-out faces
(data.Portraits seed 11):

- (a) encoder only: w = E(x);
- (b) Image2StyleGAN-style: from the mean w, pixel + perceptual, no regulariser;
- (c) in-domain: from E(x), pixel + perceptual + 2.0 ||w - E(G(w))||^2.

Reported: reconstruction MSE / PSNR (on [0, 1]) / SSIM / perceptual distance (EfficientNet-Lite0,
the 5-tap squared distance the optimiser uses, so (b) and (c) are judged partly on what they
minimise); "in-domain-ness": FD-Lite0 of the 3 inner codes of 5-step interpolations between
consecutive inverted faces against ``--real`` real faces (seed 12; small-sample FD: compare rows,
not against other tables), and the domain distance mean (w - E(G(w)))^2 for (b) and (c). Manipulation:
a hair-lightness boundary learnt from E(x) of 200 faces (seed 3, median split of the hair colour),
applied for l in -3..3 on all layers to the (b) and (c) codes; the attribute = mean brightness
inside the input's hair region, identity = MSE to the l = 0 image outside it; "monotone" = the
share of faces whose attribute rises at every step of l.
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

import nodegraph  # noqa: E402
from nodegraph.types import get_label_set  # noqa: E402
from nodes.features.frechet import fd_lite0  # noqa: E402
from nodes.inversion import edit  # noqa: E402
from nodes.inversion.optimize import Weights, as_list, feature_distance, invert, per_image  # noqa: E402

LAMBDA_FEAT = 1e-4  # Lite0 stand-in for 5e-5 on VGG conv4_3 (see graphs/idinvert.json)


def faces(seed: int, n: int) -> dict[str, torch.Tensor]:
    return nodegraph.create("data.Portraits", size=64, count=n, seed=seed, batch_size=n)()


def recon_row(name: str, x: torch.Tensor, rec: torch.Tensor, F) -> str:
    mse = per_image(x, rec)
    psnr = (-10 * torch.log10(mse.clamp_min(1e-10))).mean()
    ssim = nodegraph.create("metric.SSIM")(a=x, b=rec)["value"]
    with torch.no_grad():
        perc = feature_distance(as_list(F(x)), as_list(F(rec))).mean()
    return f"| {name} | {mse.mean():.4f} | {psnr:.2f} | {float(ssim):.3f} | {perc:.1f} |"


def render(G, w: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return ((G(w) + 1) / 2).clamp(0, 1)


def manip_row(name: str, G, w: torch.Tensor, n: torch.Tensor, hair: torch.Tensor) -> str:
    ls = torch.linspace(-3, 3, 7)
    imgs = render(G, edit.manipulate(w, n, list(range(w.shape[1])), ls)).view(w.shape[0], 7, 3, 64, 64)
    m = hair[:, None, None].float()                                   # B x 1 x 1 x H x W
    attr = (imgs * m).sum((2, 3, 4)) / (3 * m.sum((2, 3, 4))).clamp_min(1)
    ident = (((imgs - imgs[:, 3:4]) ** 2) * (1 - m)).sum((2, 3, 4)) / (3 * (1 - m).sum((2, 3, 4))).clamp_min(1)
    mono = (attr.diff(dim=1) > 0).all(1).float().mean()
    return (f"| {name} | {' / '.join(f'{v:.3f}' for v in attr.mean(0))} | {float(mono):.2f} | "
            f"{ident[:, [0, 6]].mean():.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--real", type=int, default=200)
    ap.add_argument("--generator", default="stylegan2_faces64")
    ap.add_argument("--encoder", default="idinvert_encoder_faces64")
    ap.add_argument("--out", default=str(ROOT / "runs" / "inversion_claims.md"))
    a = ap.parse_args()
    t0, load0 = time.time(), os.getloadavg()[0]
    torch.manual_seed(0)
    held = faces(11, a.n)
    x = held["image"]
    E = nodegraph.create("inversion.Encoder", weights=a.encoder)()["model"].eval()
    w_e = E(x * 2 - 1).detach()
    G = nodegraph.create("stylegan.Generator", weights=a.generator)(wplus=w_e)["model"].eval()
    F = nodegraph.create("features.EfficientNetLite0")()["model"]
    xs = x * 2 - 1
    mean = G.latent_avg.view(1, 1, -1).expand_as(w_e)
    w_b, _ = invert(G, xs, mean, F=F, weights=Weights(1.0, LAMBDA_FEAT, 0.0), steps=a.steps)
    w_c, _ = invert(G, xs, w_e, E=E, F=F, weights=Weights(1.0, LAMBDA_FEAT, 2.0), steps=a.steps)
    codes = {"(a) encoder E(x)": w_e, "(b) mean init, no regulariser": w_b, "(c) in-domain": w_c}
    lines = [f"held-out faces: {a.n} (data.Portraits seed 11, 64 px); {a.steps} Adam steps lr 0.01; "
             f"generator {a.generator}, encoder {a.encoder}", "",
             "| method | MSE | PSNR dB | SSIM | perceptual (Lite0) |", "|---|---|---|---|---|"]
    lines += [recon_row(k, x, render(G, w), F) for k, w in codes.items()]
    real = faces(12, a.real)["image"]
    lines += ["", "| method | FD-Lite0 of interpolations vs real | domain distance mean (w - E(G(w)))^2 |",
              "|---|---|---|"]
    for k, w in list(codes.items())[1:]:
        mids = edit.interpolate(w[:-1], w[1:], 5).view(w.shape[0] - 1, 5, *w.shape[1:])[:, 1:4].flatten(0, 1)
        with torch.no_grad():
            dom = per_image(w, E(G(w))).mean()
        lines.append(f"| {k} | {fd_lite0(render(G, mids), real):.2f} | {dom:.4f} |")
    lab = faces(3, 200)
    n_b = nodegraph.create("inversion.LearnBoundary", select=[1])(
        wplus=E(lab["image"] * 2 - 1).detach(), labels=lab["colors"])["boundary"]
    hair = held["labels"].squeeze(1) == get_label_set("celebamask11").names.index("hair")
    lines += ["", "| method | hair brightness at l = -3 .. 3 | monotone share | identity MSE outside hair (l = +-3) |",
              "|---|---|---|---|"]
    lines += [manip_row(k, G, w, n_b, hair) for k, w in list(codes.items())[1:]]
    lines += ["", f"wall time {time.time() - t0:.0f} s, torch threads {torch.get_num_threads()}, load average "
              f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"]
    text = "\n".join(lines)
    print(text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
