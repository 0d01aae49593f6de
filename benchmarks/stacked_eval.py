"""Quality figures of the stacked attribute GAN on procedural birds (benchmarks/results_stacked.md).

Because data.Birds draws exactly what the attribute vector says, attribute accuracy is a real
metric: small CNN classifiers are trained on *real* procedural masks (the 6 shape groups) and
images (the 16 colour groups), then applied to generated masks / images for held-out attribute
vectors (data seed 1; the GANs trained on seed 0, the classifiers on seed 2).

    python benchmarks/stacked_eval.py fit            # classifiers -> runs/stacked/classifiers.safetensors
    python benchmarks/stacked_eval.py eval [--n 500] [--s1 W] [--s2 W] [--fd]

Figures: per-group accuracy (top-1 in the group: for colours, a hit if the predicted colour is one
of the true ones), chance, and the same classifier on the real held-out items (its ceiling);
Stage-I mask IoU to the renderer's mask of the same item (threshold 0.5) and diversity over z
(mean 1 - IoU between two z for the same attributes); FD-Lite0 of generated vs real images.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from nodes.common.attrsets import CUB_GROUPS, GROUP_SLICES
from nodes.data.birds import make_bird

ROOT = Path(__file__).resolve().parents[1]
CLS_FILE = ROOT / "runs" / "stacked" / "classifiers.safetensors"
SHAPE_GROUPS = [g for g, _, k in CUB_GROUPS if k == "shape"]
COLOUR_GROUPS = [g for g, _, k in CUB_GROUPS if k == "colour"]


class SmallCNN(nn.Module):
    """4 stride-2 convs (16-128 channels) to 4 x 4, then one linear layer."""

    def __init__(self, cin: int, out: int) -> None:
        super().__init__()
        chans, layers = [cin, 16, 32, 64, 128], []
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        self.body, self.head = nn.Sequential(*layers), nn.Linear(128 * 16, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x * 2 - 1).flatten(1))


def birds(n: int, seed: int) -> dict[str, torch.Tensor]:
    items = [make_bird(i, seed=seed) for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _shape_loss(logits: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return sum(F.cross_entropy(logits[:, GROUP_SLICES[g]], a[:, GROUP_SLICES[g]].argmax(1)) for g in SHAPE_GROUPS)


def fit(n: int = 3000, epochs: int = 5) -> None:
    torch.manual_seed(0)
    data = birds(n, seed=2)
    shape_net, colour_net = SmallCNN(1, 312), SmallCNN(3, 312)
    for net, x, loss_fn in ((shape_net, data["mask"], _shape_loss),
                            (colour_net, data["image"], lambda lg, a: F.binary_cross_entropy_with_logits(lg, a))):
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        for _ in range(epochs):
            for idx in torch.randperm(n).split(64):
                loss = loss_fn(net(x[idx]), data["attributes"][idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    CLS_FILE.parent.mkdir(parents=True, exist_ok=True)
    sd = {f"shape.{k}": v for k, v in shape_net.state_dict().items()}
    sd.update({f"colour.{k}": v for k, v in colour_net.state_dict().items()})
    save_file(sd, str(CLS_FILE))


def load_classifiers() -> tuple[SmallCNN, SmallCNN]:
    sd = load_file(str(CLS_FILE))
    nets = SmallCNN(1, 312), SmallCNN(3, 312)
    for name, net in zip(("shape", "colour"), nets, strict=True):
        net.load_state_dict({k[len(name) + 1:]: v for k, v in sd.items() if k.startswith(name + ".")})
        net.eval()
    return nets


@torch.no_grad()
def accuracy(net: SmallCNN, x: torch.Tensor, a: torch.Tensor, groups: list[str]) -> float:
    logits = torch.cat([net(b) for b in x.split(128)])
    hits = []
    for g in groups:
        sl = GROUP_SLICES[g]
        pred = logits[:, sl].argmax(1)
        hits.append(a[:, sl].gather(1, pred[:, None])[:, 0] > 0.5)
    return float(torch.stack(hits).float().mean())


def chance(a: torch.Tensor, groups: list[str]) -> float:
    """Accuracy of always answering each group's most frequent value."""
    return float(sum(a[:, GROUP_SLICES[g]].mean(0).max() for g in groups) / len(groups))


def iou(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    p, q = p > 0.5, q > 0.5
    return (p & q).flatten(1).sum(1) / (p | q).flatten(1).sum(1).clamp(min=1)


@torch.no_grad()
def evaluate(n: int, s1_ref: str, s2_ref: str, fd: bool) -> dict[str, float]:
    import nodes.stacked.nodes as S

    shape_net, colour_net = load_classifiers()
    held = birds(n, seed=1)
    a = held["attributes"]
    s1 = S.Attr2Shape({"weights": s1_ref, "seed": 0})
    s1b = S.Attr2Shape({"weights": s1_ref, "seed": 1})
    s2 = S.Shape2Image({"weights": s2_ref, "seed": 0})
    t = time.perf_counter()
    gen_mask = torch.cat([s1(attributes=b)["shape"] for b in a.split(100)])
    gen_mask_b = torch.cat([s1b(attributes=b)["shape"] for b in a.split(100)])
    img_gt = torch.cat([s2(shape=m, attributes=b)["image"] for m, b in zip(held["mask"].split(100), a.split(100),
                                                                              strict=True)])
    img_st = torch.cat([s2(shape=m, attributes=b)["image"] for m, b in zip(gen_mask.split(100), a.split(100),
                                                                              strict=True)])
    r = {"n": n, "generate_s": time.perf_counter() - t,
         "s1_shape_acc_generated": accuracy(shape_net, gen_mask, a, SHAPE_GROUPS),
         "s1_shape_acc_real": accuracy(shape_net, held["mask"], a, SHAPE_GROUPS),
         "s1_shape_acc_chance": chance(a, SHAPE_GROUPS),
         "s1_iou_to_renderer": float(iou(gen_mask, held["mask"]).mean()),
         "s1_iou_real_to_other_real": float(iou(held["mask"], held["mask"].roll(1, 0)).mean()),
         "s1_diversity_1_minus_iou_over_z": float(1 - iou(gen_mask, gen_mask_b).mean()),
         "s2_colour_acc_gt_mask": accuracy(colour_net, img_gt, a, COLOUR_GROUPS),
         "s2_colour_acc_stacked": accuracy(colour_net, img_st, a, COLOUR_GROUPS),
         "s2_colour_acc_real": accuracy(colour_net, held["image"], a, COLOUR_GROUPS),
         "s2_colour_acc_chance": chance(a, COLOUR_GROUPS),
         "s2_l1_gt_mask": float((img_gt - held["image"]).abs().mean())}
    if fd:
        from nodes.features.frechet import fd_lite0

        ref = birds(n, seed=3)["image"]
        r["fd_lite0_real_vs_real"] = fd_lite0(held["image"], ref)
        r["fd_lite0_s2_gt_mask"] = fd_lite0(img_gt, ref)
        r["fd_lite0_stacked"] = fd_lite0(img_st, ref)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["fit", "eval"])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--s1", default="attr2shape_birds64")
    ap.add_argument("--s2", default="shape2image_birds64")
    ap.add_argument("--fd", action="store_true", help="FD-Lite0 (EfficientNet-Lite0 features; slow on a CPU)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.what == "fit":
        t = time.perf_counter()
        fit()
        print(f"classifiers -> {CLS_FILE} in {time.perf_counter() - t:.0f} s")
    else:
        print(json.dumps(evaluate(args.n, args.s1, args.s2, args.fd), indent=1))


if __name__ == "__main__":
    main()
