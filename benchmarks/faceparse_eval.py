"""Held-out quality of the face parser P_F: pixel accuracy and mIoU on procedural portraits.

python benchmarks/faceparse_eval.py [--weights face_parser_default] [--seed 1000] [--n 200]
Seeds differ from the training set (seed 0), so every face is unseen.
"""

from __future__ import annotations

import argparse
import time

import torch

from nodes.common.labelsets import CELEBAMASK11
from nodes.data.portraits import ProceduralPortraits
from nodes.face.nodes import load_unet_parser


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="face_parser_default")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(1)
    net = load_unet_parser(a.weights)
    ds = ProceduralPortraits(a.n, size=a.size, seed=a.seed)
    k = 11
    conf = torch.zeros(k, k, dtype=torch.long)
    t0 = time.time()
    with torch.no_grad():
        for i in range(0, a.n, 8):
            items = [ds[j] for j in range(i, min(i + 8, a.n))]
            x = torch.stack([it["image"] for it in items])
            y = torch.stack([it["labels"] for it in items])
            p = net(x).argmax(1)
            conf += torch.bincount((y * k + p).flatten(), minlength=k * k).view(k, k)
    inter = conf.diag().float()
    union = conf.sum(0) + conf.sum(1) - conf.diag()
    iou = inter / union.clamp(min=1).float()
    print(f"held-out procedural portraits: seed {a.seed}, n {a.n}, {a.size} px, weights {a.weights}")
    print(f"pixel accuracy {float(inter.sum() / conf.sum()):.4f}  mIoU {float(iou.mean()):.4f}  "
          f"({time.time() - t0:.1f} s)")
    print("| class | IoU |\n|---|---|")
    for name, v in zip(CELEBAMASK11.names, iou.tolist(), strict=True):
        print(f"| {name} | {v:.3f} |")


if __name__ == "__main__":
    main()
