"""Held-out quality of the one-shot DDS part segmenters (graphs/dds_segmenter_train.json): IoU of
the part against our face parser's labels on G_s samples the segmenter never saw.

    python benchmarks/dds_segmenter_eval.py [--n 100] [--seed 1000] [--weights-dir weights]
    python benchmarks/dds_segmenter_eval.py --pick 24     # part areas of seeds 0..23 (the labelled sample)

Each sample: z = stylegan.SampleZ(batch 1, seed s) -> G_s (stylegan2_faces64, truncation 0.7, the
fixed noise maps, as in training) -> features -> segmenter mask; the same image -> face.UNetParser
(face_parser_default) -> dualdomain.PartLabel (the label the segmenter was trained to copy). IoU =
|seg and parser| / |seg or parser| pooled over all pixels of all samples (``iou``) and averaged
per sample over samples where either is non-empty (``mean_iou``); also the fraction of pixels in
the part by each. The parser is not ground truth: it was trained on procedural photos, and G_s
samples are imperfect faces, so this measures how well one labelled sample transfers, not the
true part accuracy. ``--pick`` prints each seed's part areas by the parser and the first seed where
eyes, nose, mouth and hair each cover at least ``--min-area`` of the image (the rule used to choose
the one labelled sample).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nodegraph  # noqa: E402
from nodes.dualdomain.parts import part_mask  # noqa: E402

SEGMENTERS = {"eyes_nose_mouth": "dds_segmenter_faces64_enm", "hair": "dds_segmenter_faces64_hair"}


def sample(gen, parser, seed: int) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = gen(z=z)
        return out["image"], out["features"], parser(image=out["image"])["labels"]


def pick(gen, parser, n: int, min_area: float) -> None:
    first = None
    for s in range(n):
        _, _, lab = sample(gen, parser, s)
        areas = {k: float(part_mask(lab, k).float().mean()) for k in ("eyes", "nose", "mouth", "hair")}
        ok = all(v >= min_area for v in areas.values())
        first = s if ok and first is None else first
        print(s, " ".join(f"{k} {v:.4f}" for k, v in areas.items()), "ok" if ok else "")
    print(f"first seed with every part >= {min_area}: {first}")


def evaluate(gen, parser, weights: dict[str, str], seeds: list[int]) -> dict[str, dict[str, float]]:
    segs = {k: nodegraph.create("dualdomain.PartSegmenter", in_channels=288, weights=w) for k, w in weights.items()}
    acc = {k: {"inter": 0, "union": 0, "seg": 0, "ref": 0, "per": []} for k in weights}
    for s in seeds:
        _, feats, lab = sample(gen, parser, s)
        for k, seg in segs.items():
            with torch.no_grad():
                y = seg(features=feats)["mask"][:, 0].bool()
            ref = part_mask(lab, k).bool()
            i, u = int((y & ref).sum()), int((y | ref).sum())
            a = acc[k]
            a["inter"] += i
            a["union"] += u
            a["seg"] += int(y.sum())
            a["ref"] += int(ref.sum())
            if u:
                a["per"].append(i / u)
    pixels = len(seeds) * 64 * 64
    return {k: {"iou": a["inter"] / max(a["union"], 1), "mean_iou": sum(a["per"]) / max(len(a["per"]), 1),
                "area_segmenter": a["seg"] / pixels, "area_parser": a["ref"] / pixels, "n": len(seeds)}
            for k, a in acc.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1000, help="held-out seeds seed .. seed + n - 1")
    ap.add_argument("--weights-dir", type=Path, default=None, help="where the segmenters are (default: weights/)")
    ap.add_argument("--generator", default="stylegan2_faces64")
    ap.add_argument("--pick", type=int, default=0, help="print part areas of seeds 0..pick-1 instead")
    ap.add_argument("--min-area", type=float, default=0.002)
    ap.add_argument("--train-seed", type=int, default=None, help="also report the labelled sample's own IoU")
    a = ap.parse_args()
    gen = nodegraph.create("stylegan.Generator", weights=a.generator, truncation=0.7, noise="fixed")
    parser = nodegraph.create("face.UNetParser", weights="face_parser_default")
    if a.pick:
        pick(gen, parser, a.pick, a.min_area)
        return
    d = a.weights_dir
    weights = {k: str(d / f"{w}.safetensors") if d else w for k, w in SEGMENTERS.items()}
    res = {"held_out": evaluate(gen, parser, weights, list(range(a.seed, a.seed + a.n)))}
    if a.train_seed is not None:
        res["labelled_sample"] = evaluate(gen, parser, weights, [a.train_seed])
    res["load_average"] = os.getloadavg()
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
