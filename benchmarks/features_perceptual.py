"""Cost of the perceptual term: EfficientNet-Lite0 (the offline default) vs VGG19 (SPADE's).

    python benchmarks/features_perceptual.py [--size 256] [--batch 4] [--reps 5] [--record]

Times ``loss.Perceptual`` forward + backward (gradient to the generated image ``a``; the target
``b``'s features under no_grad, as in training) on the same batch for each backbone, and
reports the median seconds and the ratio VGG19 / Lite0, measured in the same run. VGG19 runs at
random init (its ImageNet file cannot be downloaded here; the cost does not depend on the
values), with its SPADE weights 1/32 .. 1 on relu1_1 .. relu5_1; Lite0 with its default taps
s2 .. s32. Peak RSS growth is not reported (the allocator reuses memory between runs).
``--record`` writes the table into benchmarks/RESULTS.md between markers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nodes.common.losses import PerceptualLoss  # noqa: E402
from nodes.common.vgg import SPADE_WEIGHTS, VGG19Features  # noqa: E402
from nodes.features.backbones import VGG16Features  # noqa: E402

BEGIN, END = "<!-- features_perceptual:begin -->", "<!-- features_perceptual:end -->"


def time_loss(node: PerceptualLoss, a: torch.Tensor, b: torch.Tensor, reps: int,
              features: torch.nn.Module | None = None) -> float:
    def once() -> float:
        x = a.clone().requires_grad_(True)
        t0 = time.perf_counter()
        loss = node(a=x, b=b, **({"features": features} if features is not None else {}))["loss"]
        loss.backward()
        return time.perf_counter() - t0

    once()  # warm-up (weights loaded, allocator primed)
    return statistics.median(once() for _ in range(reps))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--record", action="store_true")
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, 3, a.size, a.size, generator=g)
    y = torch.rand(a.batch, 3, a.size, a.size, generator=g)
    torch.manual_seed(0)
    rows = {
        "effnet_lite0": time_loss(PerceptualLoss(), x, y, a.reps),
        "vgg19": time_loss(PerceptualLoss({"weights": list(SPADE_WEIGHTS)}), x, y, a.reps,
                           VGG19Features().eval()),
        "vgg16": time_loss(PerceptualLoss(), x, y, a.reps, VGG16Features().eval()),
    }
    threads = torch.get_num_threads()
    lines = [BEGIN, "## Perceptual loss cost: EfficientNet-Lite0 vs VGG19", "",
             f"`python benchmarks/features_perceptual.py --size {a.size} --batch {a.batch} --record`: "
             f"`loss.Perceptual` forward + backward on one batch of {a.batch} x {a.size} x {a.size}, median of "
             f"{a.reps}, {threads} threads, CPU; the machine was shared with other jobs (absolute times are "
             "noisy, the ratio is measured in the same run).", "",
             "| backbone | s per fwd+bwd | relative to Lite0 |", "|---|---|---|"]
    for name, s in rows.items():
        lines.append(f"| {name} | {s:.3f} | {s / rows['effnet_lite0']:.1f}x |")
    block = "\n".join(lines + ["", END])
    print(block)
    if a.record:
        path = ROOT / "benchmarks" / "RESULTS.md"
        text = path.read_text()
        if BEGIN in text:
            text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
