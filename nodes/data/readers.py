"""Readers for the real SPADE datasets in their published on-disk layouts.

- ``data.ADE20K``: ADEChallengeData2016 (``images/{training,validation}/*.jpg``,
  ``annotations/{training,validation}/*.png``, PNG 0 = unlabelled, 1..150 = classes).
  Ids as SPADE feeds them: ``png - 1``, unlabelled -> 150 ("don't care").
- ``data.COCOStuff``: COCO-Stuff 164k (``images/{train,val}2017/*.jpg`` with
  ``stuffthingmaps_trainval2017/{train,val}2017/*.png``, ids 0..181, 255 unlabelled -> 182), or
  SPADE's own layout (``{train,val}_img``, ``{train,val}_label``, ``{train,val}_inst``). Instance
  maps (``{split}_inst`` or ``instances/{split}2017``) feed the edge channel; without them the
  label map stands in (edges between classes only) and the node warns.

Resizing follows SPADE's loader: images bicubic, label/instance maps nearest; training adds a
random crop (from ``load_size`` to ``size``) and a horizontal flip, both drawn from (seed, index)
so an item is a deterministic function of its index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from pydantic import Field

from nodegraph.node import DatasetNode, InputDir, Params
from nodegraph.registry import register
from nodegraph.types import Image, LabelMap, Tensor
from nodes.common import labelsets  # noqa: F401  (registers ade20k / coco)

IMAGE_EXT = (".jpg", ".jpeg", ".png")


class PairedSegDataset(torch.utils.data.Dataset):
    """(image, label[, instance]) file triples -> tensors, SPADE's preprocessing."""

    def __init__(self, items: list[tuple[Path, Path, Path | None]], size: int, load_size: int,
                 flip: bool, seed: int, label_fn, with_instance: bool) -> None:
        self.items, self.size, self.load_size = items, size, max(load_size, size)
        self.flip, self.seed, self.label_fn, self.with_instance = flip, seed, label_fn, with_instance

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img_p, lab_p, inst_p = self.items[i]
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        ls = self.load_size
        img = PILImage.open(img_p).convert("RGB").resize((ls, ls), PILImage.BICUBIC)
        lab_img = PILImage.open(lab_p)
        lab = np.asarray(lab_img.resize((ls, ls), PILImage.NEAREST)).astype(np.int64)
        if lab.ndim == 3:
            raise ValueError(f"{lab_p}: expected a single-channel label PNG, got {lab.shape[2]} channels")
        lab = self.label_fn(lab)
        inst = None
        if self.with_instance:
            src = PILImage.open(inst_p) if inst_p is not None else None
            inst = (np.asarray(src.resize((ls, ls), PILImage.NEAREST)).astype(np.int64) if src is not None
                    else lab.copy())
        x0 = y0 = 0
        if ls > self.size:
            x0 = int(torch.randint(0, ls - self.size + 1, (1,), generator=gen))
            y0 = int(torch.randint(0, ls - self.size + 1, (1,), generator=gen))
        flip = self.flip and bool(torch.rand(1, generator=gen) < 0.5)
        s = self.size

        def crop(a: np.ndarray) -> np.ndarray:
            a = a[y0:y0 + s, x0:x0 + s]
            return np.array(a[:, ::-1] if flip else a)

        out = {"image": torch.from_numpy(crop(np.array(img))).permute(2, 0, 1).float() / 255.0,
               "labels": torch.from_numpy(crop(lab))}
        if inst is not None:
            out["instance"] = torch.from_numpy(crop(inst))
        return out


def _pairs(img_dir: Path, lab_dir: Path, inst_dir: Path | None) -> list[tuple[Path, Path, Path | None]]:
    labels = {p.stem: p for p in sorted(lab_dir.glob("*.png"))}
    out = []
    for p in sorted(img_dir.iterdir()):
        if p.suffix.lower() in IMAGE_EXT and p.stem in labels:
            inst = inst_dir / f"{p.stem}.png" if inst_dir is not None else None
            out.append((p, labels[p.stem], inst if inst is not None and inst.is_file() else None))
    return out


class _ReaderParams(Params):
    root: InputDir = Field(description="dataset root folder (published layout, see the node doc)")
    size: int = Field(256, ge=16, le=2048, description="crop size fed to the network (official 256)")
    load_size: int = Field(0, ge=0, le=4096, description="resize to this before the random crop "
                           "(official training 286); 0 = size (no crop)")
    flip: bool = Field(False, description="random horizontal flip (official training: on)")
    length: int = Field(0, ge=0, description="use only the first N pairs (0 = all)")
    seed: int = 0
    batch_size: int = Field(1, ge=1)


def _ade_labels(lab: np.ndarray) -> np.ndarray:
    lab = lab - 1
    lab[lab < 0] = 150  # unlabelled -> don't care channel
    lab[lab > 150] = 150
    return lab


def _coco_labels(lab: np.ndarray) -> np.ndarray:
    lab = lab.copy()
    lab[lab >= 182] = 182  # 255 unlabelled -> don't care channel
    return lab


@register("data.ADE20K")
class ADE20K(DatasetNode):
    """ADE20K scene parsing (ADEChallengeData2016 layout): image + ``ade20k`` label map
    (ids 0..149, 150 = unlabelled / don't care) as SPADE's ade20k loader produces them."""

    class Params(_ReaderParams):
        split: str = Field("training", description="training or validation")

    outputs = {"labels": LabelMap("ade20k"), "image": Image()}

    def dataset(self) -> PairedSegDataset:
        p = self.params
        root = Path(p.root)
        img_dir, lab_dir = root / "images" / p.split, root / "annotations" / p.split
        for d in (img_dir, lab_dir):
            if not d.is_dir():
                raise FileNotFoundError(f"data.ADE20K params.root: {d} not found (expected the "
                                        "ADEChallengeData2016 layout: images/<split>, annotations/<split>)")
        items = _pairs(img_dir, lab_dir, None)
        if not items:
            raise FileNotFoundError(f"data.ADE20K: no image/annotation pairs in {img_dir} and {lab_dir}")
        items = items[: p.length] if p.length else items
        return PairedSegDataset(items, p.size, p.load_size, p.flip, p.seed, _ade_labels, False)


@register("data.COCOStuff")
class COCOStuff(DatasetNode):
    """COCO-Stuff (images + stuffthingmaps, or SPADE's train_img/train_label/train_inst layout):
    image, ``coco`` label map (0..181, 182 = unlabelled) and an instance map for the edge channel."""

    class Params(_ReaderParams):
        split: str = Field("train", description="train or val")

    outputs = {"labels": LabelMap("coco"), "image": Image(), "instance": Tensor(rank=3)}

    def _dirs(self) -> tuple[Path, Path, Path | None]:
        root, s = Path(self.params.root), self.params.split
        spade = (root / f"{s}_img", root / f"{s}_label", root / f"{s}_inst")
        if spade[0].is_dir() and spade[1].is_dir():
            return spade[0], spade[1], spade[2] if spade[2].is_dir() else None
        img = root / "images" / f"{s}2017"
        for name in ("stuffthingmaps_trainval2017", "stuffthingmaps"):
            lab = root / name / f"{s}2017"
            if img.is_dir() and lab.is_dir():
                inst = root / "instances" / f"{s}2017"
                return img, lab, inst if inst.is_dir() else None
        raise FileNotFoundError(
            f"data.COCOStuff params.root: no COCO-Stuff layout under {root} (expected images/{s}2017 + "
            f"stuffthingmaps_trainval2017/{s}2017, or {s}_img + {s}_label [+ {s}_inst])")

    def dataset(self) -> PairedSegDataset:
        p = self.params
        img_dir, lab_dir, inst_dir = self._dirs()
        items = _pairs(img_dir, lab_dir, inst_dir)
        if not items:
            raise FileNotFoundError(f"data.COCOStuff: no image/label pairs in {img_dir} and {lab_dir}")
        if any(t[2] is None for t in items):
            self.ctx.warn("data.COCOStuff: no instance maps found; the label map stands in for the "
                          "instance edges (class boundaries only)")
        items = items[: p.length] if p.length else items
        return PairedSegDataset(items, p.size, p.load_size, p.flip, p.seed, _coco_labels, True)


def write_fixture(root: str | Path, kind: str, n: int = 2, size: tuple[int, int] = (24, 20),
                  seed: int = 0) -> Path:
    """Write a tiny dataset in the published layout (tests, docs): ``ade20k``, ``coco`` or
    ``coco_spade``. Returns the root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    w, h = size
    for i in range(n):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if kind == "ade20k":
            stem = f"ADE_train_{i + 1:08d}"
            paths = (root / "images/training", root / "annotations/training", None)
            lab = rng.integers(0, 151, (h, w), dtype=np.uint8)
        else:
            stem = f"{i:012d}"
            if kind == "coco":
                paths = (root / "images/train2017", root / "stuffthingmaps_trainval2017/train2017", None)
            else:
                paths = (root / "train_img", root / "train_label", root / "train_inst")
            lab = rng.choice(np.array([0, 5, 91, 150, 181, 255], dtype=np.uint8), (h, w))
        for d in paths:
            if d is not None:
                d.mkdir(parents=True, exist_ok=True)
        PILImage.fromarray(img).save(paths[0] / f"{stem}.jpg", quality=95)
        PILImage.fromarray(lab).save(paths[1] / f"{stem}.png")
        if paths[2] is not None:
            inst = np.zeros((h, w), dtype=np.uint8)
            inst[:, w // 2:] = 1
            PILImage.fromarray(inst).save(paths[2] / f"{stem}.png")
    return root


