"""Quality figures of the stacked attribute GAN on procedural birds (benchmarks/results_stacked.md).

Because data.Birds draws exactly what the attribute vector says, attribute accuracy is a real
metric: classifiers are trained on *real* procedural masks (the 6 shape groups) and images (the
16 colour groups), then applied to generated masks / images for held-out attribute vectors (data
seed 1; the GANs trained on seed 0, the classifiers on seed 2). The classifiers are multinomial
logistic regressions on 16 x 16 box-downsampled inputs: cheap enough for a shared 2-core machine
(a small CNN took 10 minutes an epoch there), and strong enough that real held-out items score
far above chance (their figure is the ceiling printed beside each generated one).

    python benchmarks/stacked_eval.py fit            # classifiers -> runs/stacked/classifiers.json
    python benchmarks/stacked_eval.py eval [--n 300] [--s1 W] [--s1-preset P] [--s2 W] [--s2-params JSON] [--fd]
    python benchmarks/stacked_eval.py eval1 [--n 300] [--s1 W] [--s1-preset P]   # Stage-I only
    python benchmarks/stacked_eval.py sheet1 --rows cpu:attr2shape_birds64:old --out docs/img/x.png

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
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from sklearn.linear_model import LogisticRegression

from nodes.common.attrsets import CUB_GROUPS, GROUP_SLICES
from nodes.data.birds import NUM_CLASSES, item_rng, make_bird, render, species, vary

ROOT = Path(__file__).resolve().parents[1]
CLS_FILE = ROOT / "runs" / "stacked" / "classifiers.json"
SHAPE_GROUPS = [g for g, _, k in CUB_GROUPS if k == "shape"]
COLOUR_GROUPS = [g for g, _, k in CUB_GROUPS if k == "colour"]


def birds(n: int, seed: int) -> dict[str, torch.Tensor]:
    """n items of data.Birds ``seed``, cached under runs/stacked/ (rendering is the slow part on a CPU)."""
    cache = ROOT / "runs" / "stacked" / f"birds_seed{seed}_n{n}.safetensors"
    if cache.is_file():
        return load_file(str(cache))
    items = [make_bird(i, seed=seed) for i in range(n)]
    out = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(cache))
    return out


def other_pose_masks(n: int, seed: int) -> torch.Tensor:
    """Masks of items 0..n-1 of ``seed`` re-rendered with another pose jitter: the IoU a perfect
    Stage-I could reach against the renderer's mask (the pose is not in the attributes)."""
    cache = ROOT / "runs" / "stacked" / f"birds_seed{seed}_n{n}_otherpose.safetensors"
    if cache.is_file():
        return load_file(str(cache))["mask"]
    out = []
    for i in range(n):
        rng = item_rng(seed, i)  # the draws of make_bird: class, then the per-image variation
        spec = vary(species(int(rng.integers(0, NUM_CLASSES))), rng)
        out.append(torch.from_numpy(render(spec, np.random.default_rng([seed, i, 7]), 64)[1])[None])
    masks = torch.stack(out)
    save_file({"mask": masks}, str(cache))
    return masks


def features(x: torch.Tensor) -> np.ndarray:
    """Classifier input: the mask / image box-downsampled to 16 x 16, flattened."""
    return F.adaptive_avg_pool2d(x.float(), 16).flatten(1).numpy()


def _target(a: torch.Tensor, g: str) -> np.ndarray:
    return a[:, GROUP_SLICES[g]].argmax(1).numpy()  # colour groups: the first true colour


def fit(n: int = 1200) -> None:
    """One multinomial logistic regression per group: 6 shape groups on masks, 16 colour groups on images."""
    t = time.perf_counter()
    data = birds(n, seed=2)
    print(f"{n} training birds ready in {time.perf_counter() - t:.0f} s", flush=True)
    models = {}
    for kind, x, groups in (("shape", data["mask"], SHAPE_GROUPS), ("colour", data["image"], COLOUR_GROUPS)):
        fx = features(x)
        for g in groups:
            models[g] = LogisticRegression(max_iter=300, C=1.0).fit(fx, _target(data["attributes"], g))
        print(f"{kind} classifiers at {time.perf_counter() - t:.0f} s", flush=True)
    CLS_FILE.parent.mkdir(parents=True, exist_ok=True)
    CLS_FILE.write_bytes(json.dumps({g: {"coef": m.coef_.tolist(), "intercept": m.intercept_.tolist(),
                                         "classes": m.classes_.tolist()} for g, m in models.items()}).encode())


def load_classifiers() -> dict[str, dict]:
    return json.loads(CLS_FILE.read_text())


def accuracy(models: dict[str, dict], x: torch.Tensor, a: torch.Tensor, groups: list[str],
             per_group: bool = False) -> Any:
    """Mean over items and groups of: the predicted value is one of the item's true values
    (with ``per_group``, also a {group: accuracy} dict)."""
    fx = torch.from_numpy(features(x)).double()
    hits = []
    for g in groups:
        m = models[g]
        logits = fx @ torch.tensor(m["coef"]).double().T + torch.tensor(m["intercept"]).double()
        pred = torch.tensor(m["classes"])[logits.argmax(1)]
        hits.append(a[:, GROUP_SLICES[g]].gather(1, pred[:, None])[:, 0] > 0.5)
    mean = float(torch.stack(hits).float().mean())
    if not per_group:
        return mean
    return mean, {g.removeprefix("has_"): round(float(h.float().mean()), 3) for g, h in zip(groups, hits, strict=True)}


def chance(a: torch.Tensor, groups: list[str]) -> float:
    """Accuracy of always answering each group's most frequent value."""
    return float(sum(a[:, GROUP_SLICES[g]].mean(0).max() for g in groups) / len(groups))


def components(m: torch.Tensor) -> float:
    """Mean number of 8-connected foreground pieces (mask > 0.5) per mask: 1 for a clean silhouette
    (legs may add a few), many for the speckle a per-pixel discriminator lets through."""
    from scipy import ndimage

    return float(np.mean([ndimage.label(x[0].numpy() > 0.5, structure=np.ones((3, 3)))[1] for x in m]))


def iou(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    p, q = p > 0.5, q > 0.5
    return (p & q).flatten(1).sum(1) / (p | q).flatten(1).sum(1).clamp(min=1)


@torch.no_grad()
def evaluate_s1(n: int, s1_ref: str, s1_preset: str | None) -> tuple[dict[str, Any], torch.Tensor]:
    """Stage-I figures on the held-out items, and the generated masks (seed 0)."""
    import nodes.stacked.nodes as S

    models = load_classifiers()
    held = birds(n, seed=1)
    a = held["attributes"]
    extra = {"preset": s1_preset} if s1_preset else {}
    s1 = S.Attr2Shape({"weights": s1_ref, "seed": 0, **extra})
    s1b = S.Attr2Shape({"weights": s1_ref, "seed": 1, **extra})
    gen_mask = torch.cat([s1(attributes=b)["shape"] for b in a.split(100)])
    gen_mask_b = torch.cat([s1b(attributes=b)["shape"] for b in a.split(100)])
    acc, groups = accuracy(models, gen_mask, a, SHAPE_GROUPS, per_group=True)
    acc_real, groups_real = accuracy(models, held["mask"], a, SHAPE_GROUPS, per_group=True)
    r = {"n": n, "s1": s1_ref, "s1_shape_acc_generated": acc, "s1_shape_acc_real": acc_real,
         "s1_shape_acc_chance": chance(a, SHAPE_GROUPS), "s1_shape_acc_per_group": groups,
         "s1_shape_acc_per_group_chance": {g.removeprefix("has_"): round(chance(a, [g]), 3) for g in SHAPE_GROUPS},
         "s1_shape_acc_per_group_real": groups_real,
         "s1_iou_to_renderer": float(iou(gen_mask, held["mask"]).mean()),
         "s1_iou_real_same_attributes_other_pose": float(iou(other_pose_masks(n, 1), held["mask"]).mean()),
         "s1_iou_real_to_other_real": float(iou(held["mask"], held["mask"].roll(1, 0)).mean()),
         "s1_diversity_1_minus_iou_over_z": float(1 - iou(gen_mask, gen_mask_b).mean()),
         "s1_components": components(gen_mask), "s1_components_real": components(held["mask"]),
         "s1_soft_pixel_fraction": float(((gen_mask > 0.1) & (gen_mask < 0.9)).float().mean()),
         "s1_soft_pixel_fraction_real": float(((held["mask"] > 0.1) & (held["mask"] < 0.9)).float().mean())}
    return r, gen_mask


@torch.no_grad()
def evaluate(n: int, s1_ref: str, s2_ref: str, fd: bool, s1_preset: str | None = None,
             s2_params: dict[str, Any] | None = None) -> dict[str, Any]:
    import nodes.stacked.nodes as S

    models = load_classifiers()
    held = birds(n, seed=1)
    a = held["attributes"]
    t = time.perf_counter()
    r1, gen_mask = evaluate_s1(n, s1_ref, s1_preset)
    s2 = S.Shape2Image({"weights": s2_ref, "seed": 0, **(s2_params or {})})
    img_gt = torch.cat([s2(shape=m, attributes=b)["image"] for m, b in zip(held["mask"].split(100), a.split(100),
                                                                              strict=True)])
    img_st = torch.cat([s2(shape=m, attributes=b)["image"] for m, b in zip(gen_mask.split(100), a.split(100),
                                                                              strict=True)])
    r = {**r1, "s2": s2_ref, "generate_s": time.perf_counter() - t,
         "s2_colour_acc_gt_mask": accuracy(models, img_gt, a, COLOUR_GROUPS),
         "s2_colour_acc_stacked": accuracy(models, img_st, a, COLOUR_GROUPS),
         "s2_colour_acc_real": accuracy(models, held["image"], a, COLOUR_GROUPS),
         "s2_colour_acc_chance": chance(a, COLOUR_GROUPS),
         "s2_l1_gt_mask": float((img_gt - held["image"]).abs().mean())}
    if fd:
        from nodes.features.frechet import fd_lite0

        ref = birds(n, seed=3)["image"]
        r["fd_lite0_real_vs_real"] = fd_lite0(held["image"], ref)
        r["fd_lite0_s2_gt_mask"] = fd_lite0(img_gt, ref)
        r["fd_lite0_stacked"] = fd_lite0(img_st, ref)
    return r


@torch.no_grad()
def sheet1(rows: list[str], out: Path, k: int = 8) -> None:
    """A PNG: the renderer's masks of held-out items 0..k-1, then one row per ``PRESET:WEIGHTS[:LABEL]``
    (Stage-I masks for the same attributes, z seed 0), each row labelled on its left."""
    from PIL import Image, ImageDraw

    import nodes.stacked.nodes as S

    held = birds(300, seed=1)
    a = held["attributes"][:k]
    grid, labels = [held["mask"][:k]], ["renderer"]
    for row in rows:
        preset, ref, *label = row.split(":")
        grid.append(S.Attr2Shape({"weights": ref, "preset": preset, "seed": 0})(attributes=a)["shape"])
        labels.append(label[0] if label else Path(ref).stem)
    cell, left = 64, 150
    img = Image.new("L", (left + k * (cell + 2), len(grid) * (cell + 2)), 255)
    draw = ImageDraw.Draw(img)
    for r, (masks, label) in enumerate(zip(grid, labels, strict=True)):
        draw.text((4, r * (cell + 2) + cell // 2 - 6), label, fill=0)
        for c in range(k):
            tile = Image.fromarray((masks[c, 0].clamp(0, 1).numpy() * 255).astype(np.uint8))
            img.paste(tile, (left + c * (cell + 2), r * (cell + 2)))
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["fit", "eval", "eval1", "sheet1"],
                    help="eval1: Stage-I figures only; sheet1: a picture of Stage-I masks")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--s1", default="attr2shape_birds64")
    ap.add_argument("--s2", default="shape2image_birds64")
    ap.add_argument("--s1-preset", default=None, help="Attr2Shape preset of --s1 (default: the node's)")
    ap.add_argument("--s2-params", default="{}", help='Shape2Image params of --s2 as JSON, e.g. {"preset": "glu"}')
    ap.add_argument("--rows", nargs="*", default=[], help="sheet1: PRESET:WEIGHTS[:LABEL] per row")
    ap.add_argument("--out", default="docs/img/stacked_stage1.png", help="sheet1: the PNG to write")
    ap.add_argument("--fd", action="store_true", help="FD-Lite0 (EfficientNet-Lite0 features; slow on a CPU)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.what == "fit":
        t = time.perf_counter()
        fit()
        print(f"classifiers -> {CLS_FILE} in {time.perf_counter() - t:.0f} s")
    elif args.what == "sheet1":
        sheet1(args.rows, ROOT / args.out)
    elif args.what == "eval1":
        print(json.dumps(evaluate_s1(args.n, args.s1, args.s1_preset)[0], indent=1))
    else:
        r = evaluate(args.n, args.s1, args.s2, args.fd, args.s1_preset, json.loads(args.s2_params))
        print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
