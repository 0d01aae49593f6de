"""Hair-colour transfer per donor colour (style transfer by embedding swap, thesis 4.4.3).

    python benchmarks/portrait_hair_transfer.py [--targets 12] [--donors 4] [--prefix P] [--json F]

The same ``--donors`` procedural faces (``data.Portraits`` seed 4242, held out) are drawn once per
hair colour -- the renderer's ten colours plus green, which it never draws -- by fixing the
colour the renderer picks (the random stream is untouched, so only the hair, and the brows that
follow it, change). Each donor's hair code replaces the hair code of ``--targets`` held-out faces
(seed 999); the output's mean hair colour (on the target's hair mask) is compared with the
donor's (measured on the donor image, as ``data.Portraits``' ``colors``). RGB distances in 0..255.

Per colour, where the colour is lost along the path z -> D_sub -> G_m -> G_b:
- ``ae``: the hair autoencoder's own image decoder D_local(z) vs the donor (does z keep it?);
- ``self``: the donor rebuilt on its own mask and background (can G render it at all?);
- ``swap``: the donor's hair code on the targets (the edit); ``before``: the targets' own rebuilds;
- ``moved`` = 1 - swap / before (1: the colour fully moved to the donor's);
- ``out``: the mean output hair colour of the swaps (RGB 0..255);
- ``z_sep``: distance of the donor codes from the same faces' black-haired codes, over the
  spread of codes across faces (0: the code ignores the colour).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from nodes.data import portrait_render as pr
from nodes.data.portrait_render import HAIR_COLOURS, HAIR_P
from nodes.portrait.model import Batch, MaskGuidedFramework
from nodes.portrait.net import PARTS

try:
    from benchmarks.portrait_quality import NAMES, load_framework
except ImportError:  # run as a script from benchmarks/
    from portrait_quality import NAMES, load_framework  # type: ignore[no-redef]

HAIR = PARTS.index("hair")
NAMED = ("black", "dark brown", "brown", "light brown", "blonde", "ginger", "grey", "white", "blue",
         "pink")
COLOURS = {name: tuple(int(round(v * 255)) for v in c) for name, c in zip(NAMED, HAIR_COLOURS, strict=True)}
COLOURS["green (never drawn)"] = (50, 140, 60)
TRAIN_SHARE = dict(zip(NAMED, HAIR_P.tolist(), strict=True))


@contextlib.contextmanager
def hair_colour(rgb: tuple[int, int, int]) -> Iterator[None]:
    """Make the renderer draw every hair in ``rgb`` (0..255), same random stream otherwise."""
    old = pr.HAIR_COLOURS
    pr.HAIR_COLOURS = np.tile(np.array(rgb, np.float32) / 255, (len(old), 1))
    try:
        yield
    finally:
        pr.HAIR_COLOURS = old


def faces(seed: int, count: int, size: int, rgb: tuple[int, int, int] | None = None,
          min_hair: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` faces of set ``seed`` with at least ``min_hair`` hair pixels."""
    imgs, labs, i = [], [], 0
    with hair_colour(rgb) if rgb else contextlib.nullcontext():
        while len(imgs) < count:
            s = pr.render(seed, i, size)
            i += 1
            if int((s.labels == 10).sum()) >= min_hair:
                imgs.append(torch.from_numpy(s.image.transpose(2, 0, 1).copy()))
                labs.append(torch.from_numpy(s.labels.astype(np.int64)))
    return torch.stack(imgs), torch.stack(labs)


def hair_mean(img: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
    """N x 3 mean RGB (0..255) of each image's hair (label 10)."""
    m = (lab == 10).unsqueeze(1).float()
    return (img.clamp(0, 1) * m).sum((2, 3)) / m.sum((2, 3)).clamp(min=1) * 255


def dist(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm(dim=-1).mean())


@torch.no_grad()
def measure(model: MaskGuidedFramework, n_targets: int = 12, n_donors: int = 4) -> dict:
    size = model.cfg.size
    timg, tlab = faces(999, n_targets, size)
    tgt = Batch.of(timg, tlab)
    _, tcodes, _ = model.encode(tgt)
    rebuilt = hair_mean((model.render(tcodes, tgt) + 1) / 2, tlab)
    black = None
    out: dict = {}
    for name, rgb in COLOURS.items():
        dimg, dlab = faces(4242, n_donors, size, rgb)
        donor = Batch.of(dimg, dlab)
        crops, dcodes, _ = model.encode(donor)
        want = hair_mean(dimg, dlab)  # N x 3
        ae = hair_mean((model.local.decode_images(dcodes)["hair"] + 1) / 2, dlab)
        self_rec = hair_mean((model.render(dcodes, donor) + 1) / 2, dlab)
        swaps, before = [], []
        for k in range(n_donors):
            mixed = tcodes.clone()
            mixed[:, HAIR] = dcodes[k, HAIR]
            swaps.append(hair_mean((model.render(mixed, tgt) + 1) / 2, tlab))
            before.append(dist(rebuilt, want[k]))
        swap = torch.stack(swaps)  # donors x targets x 3
        z = dcodes[:, HAIR]
        if black is None:
            black = z
        spread = float(torch.cdist(black, black).sum() / max(1, n_donors * (n_donors - 1)))
        swap_err = float((swap - want[:, None]).norm(dim=-1).mean())
        out[name] = {
            "rgb": list(rgb), "train_share": TRAIN_SHARE.get(name, 0.0),
            "donor": [round(v) for v in want.mean(0).tolist()],
            "ae": round(dist(ae, want), 1), "self": round(dist(self_rec, want), 1),
            "before": round(float(np.mean(before)), 1), "swap": round(swap_err, 1),
            "moved": round(1 - swap_err / float(np.mean(before)), 3),
            "out": [round(v) for v in swap.reshape(-1, 3).mean(0).tolist()],
            "ae_out": [round(v) for v in ae.mean(0).tolist()],
            "self_out": [round(v) for v in self_rec.mean(0).tolist()],
            "z_sep": round(float((z - black).norm(dim=-1).mean()) / max(spread, 1e-9), 2),
            "worst_pair": round(float((swap - want[:, None]).norm(dim=-1).max()), 1),
        }
    return out


def table(res: dict) -> list[str]:
    lines = ["| donor hair | share in training | donor RGB | D_local(z) RGB | self-rebuild RGB | swap output RGB "
             "| D_local err | self err | before | swap err | moved | z_sep |", "|" + "---|" * 12]
    for name, r in res.items():
        lines.append(f"| {name} | {100 * r['train_share']:.1f} % | {tuple(r['donor'])} | {tuple(r['ae_out'])} | "
                     f"{tuple(r['self_out'])} | {tuple(r['out'])} | {r['ae']:.1f} | {r['self']:.1f} | "
                     f"{r['before']:.1f} | {r['swap']:.1f} | {r['moved']:.2f} | {r['z_sep']:.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", type=int, default=12)
    ap.add_argument("--donors", type=int, default=4)
    ap.add_argument("--prefix", default="", help="weights named PREFIX + mask_guided_* (a trial run)")
    ap.add_argument("--local", default="", help="other weights for the local embedding only")
    ap.add_argument("--export-dir", default="", help="a training run's export folder: its mask_guided_*.safetensors "
                                                     "replace the shipped ones (the others stay)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = {k: args.prefix + v for k, v in NAMES.items()}
    if args.local:
        names["local"] = args.local
    for k, v in NAMES.items():
        f = Path(args.export_dir) / f"{v}.safetensors"
        if args.export_dir and f.is_file():
            names[k] = str(f)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    res = measure(load_framework(names), args.targets, args.donors)
    print("\n".join(table(res)))
    worst = max(res, key=lambda k: res[k]["swap"])
    print(f"worst: {worst} (swap error {res[worst]['swap']}, moved {res[worst]['moved']}); "
          f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
