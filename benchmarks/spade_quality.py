"""Quality of a landscape SPADE generator on held-out layouts (data.Landscapes seed 1, unseen in
training, which uses seed 0).

    python benchmarks/spade_quality.py [--weights spade_landscape] [--n 48] [--size 128]

1. Per-class colour statistics: mean RGB (0..255) of each class over the generated set vs over
   the procedural renderer's pictures of the same layouts; reports |difference| per class.
2. Pixel accuracy of a simple classifier (random forest on local colour, texture and gradient
   features, no position) trained on renderer pictures of other layouts (seed 2): its accuracy
   on generated pictures of the held-out layouts vs on the renderer's own pictures of them
   (the ceiling), and on a random-init generator (the floor).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nodes.common.labelsets import LANDSCAPE  # noqa: E402
from nodes.data.landscapes import make_landscape  # noqa: E402
from nodes.spade.nodes import Generator  # noqa: E402


def features(img: torch.Tensor) -> np.ndarray:
    """B x 3 x H x W -> (B*H*W) x 12: blurred colour (3x3 and 7x7), local std, gradient magnitude."""
    b3 = F.avg_pool2d(img, 3, 1, 1, count_include_pad=False)
    b7 = F.avg_pool2d(img, 7, 1, 3, count_include_pad=False)
    sq = F.avg_pool2d(img ** 2, 5, 1, 2, count_include_pad=False)
    std = (sq - F.avg_pool2d(img, 5, 1, 2, count_include_pad=False) ** 2).clamp_min(0).sqrt()
    gx = (img[..., :, 1:] - img[..., :, :-1]).abs().mean(1, keepdim=True)
    gy = (img[..., 1:, :] - img[..., :-1, :]).abs().mean(1, keepdim=True)
    grad = F.pad(gx, (0, 1)) + F.pad(gy, (0, 0, 0, 1))
    f = torch.cat([b3, b7, std, F.avg_pool2d(grad, 3, 1, 1)], 1)
    return f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]).numpy()


def dataset(seed: int, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    items = [make_landscape(i, seed, size) for i in range(n)]
    return torch.stack([it["labels"] for it in items]), torch.stack([it["image"] for it in items])


@torch.inference_mode()
def generate(weights: str, labels: torch.Tensor) -> torch.Tensor:
    node = Generator({"preset": "landscape", "weights": weights})
    node.ctx.emit = lambda *a, **k: None
    return torch.cat([node(labels=labels[i:i + 8])["image"] for i in range(0, len(labels), 8)])


def class_means(img: torch.Tensor, lab: torch.Tensor) -> dict[str, list[float]]:
    out = {}
    for c, name in enumerate(LANDSCAPE.names):
        m = lab == c
        if int(m.sum()) > 0:
            out[name] = (img.permute(1, 0, 2, 3)[:, m].mean(1) * 255).tolist()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="spade_landscape")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    torch.set_num_threads(1)
    from sklearn.ensemble import RandomForestClassifier

    lab_tr, img_tr = dataset(2, a.n, a.size)
    lab_te, img_te = dataset(1, a.n, a.size)
    gen_img = generate(a.weights, lab_te)
    torch.manual_seed(0)
    rand_img = generate("", lab_te)

    rng = np.random.default_rng(0)
    x, y = features(img_tr), lab_tr.reshape(-1).numpy()
    pick = rng.choice(len(y), min(len(y), 60_000), replace=False)
    clf = RandomForestClassifier(n_estimators=40, max_depth=14, n_jobs=1, random_state=0)
    clf.fit(x[pick], y[pick])
    yt = lab_te.reshape(-1).numpy()
    acc = {k: float((clf.predict(features(v)) == yt).mean())
           for k, v in (("renderer", img_te), ("generator", gen_img), ("random_init", rand_img))}

    ref_m, gen_m = class_means(img_te, lab_te), class_means(gen_img, lab_te)
    diff = {k: round(float(np.abs(np.array(gen_m[k]) - np.array(ref_m[k])).mean()), 1) for k in ref_m}
    res = {"held_out_layouts": a.n, "size": a.size, "pixel_accuracy": {k: round(v, 3) for k, v in acc.items()},
           "class_mean_rgb_abs_diff": diff,
           "class_mean_rgb_abs_diff_avg": round(float(np.mean(list(diff.values()))), 1),
           "class_mean_rgb": {"renderer": {k: [round(v, 1) for v in c] for k, c in ref_m.items()},
                              "generator": {k: [round(v, 1) for v in c] for k, c in gen_m.items()}}}
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
