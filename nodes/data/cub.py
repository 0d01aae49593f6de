"""CUB-200-2011 in its published on-disk layout (``data.CUB``), with the separate segmentations.

Layout (Caltech tarballs; research note §1)::

    <root>/attributes.txt                      the 312 names (at the *archive root*, not in attributes/)
    <root>/CUB_200_2011/images.txt             <image_id> <class dir>/<file>.jpg  (names never derived)
    <root>/CUB_200_2011/{classes,image_class_labels,train_test_split,bounding_boxes}.txt
    <root>/CUB_200_2011/attributes/image_attribute_labels.txt  <img> <attr> <is_present> <certainty> <time>
    <root>/CUB_200_2011/attributes/class_attribute_labels_continuous.txt   200 x 312 percentages
    <root>/segmentations/<class dir>/<file>.png  one soft mask per image (grey 0..255)

``root`` may also be the ``CUB_200_2011`` folder itself; ``attributes.txt`` and ``segmentations/``
are probed in both places. Quirks handled: extra tokens on attribute lines (first 4 kept, keyed
by ids, not by line order), bounding boxes parsed as floats, masks read as single-channel L and
scaled to [0, 1]. Counts are checked (11,788 images, 312 attributes, 200 classes in the full
set); a mismatch is reported as a warning, a missing file as an error naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image as PILImage
from pydantic import Field

from nodegraph.node import DatasetNode, InputDir, Params
from nodegraph.registry import register
from nodegraph.types import Attributes, Image, Mask, Tensor

from ..common.attrsets import CUB312_NAMES

CUB_IMAGES, CUB_CLASSES = 11_788, 200
# ConceptBottleneck's certainty-calibrated soft labels: certainty id -> value when present / absent
CERTAIN_PRESENT = {1: 0.0, 2: 0.5, 3: 0.75, 4: 1.0}
CERTAIN_ABSENT = {1: 0.0, 2: 0.5, 3: 0.25, 4: 0.0}


class CUBLayoutError(FileNotFoundError):
    """A file of the published layout is missing or unreadable."""


def _base(root: Path) -> Path:
    for cand in (root, root / "CUB_200_2011"):
        if (cand / "images.txt").is_file():
            return cand
    raise CUBLayoutError(f"data.CUB params.root: no images.txt in {root} nor {root / 'CUB_200_2011'} "
                         "(expected the CUB_200_2011 tarball extracted there)")


def _first(cands: list[Path], what: str) -> Path:
    for c in cands:
        if c.exists():
            return c
    raise CUBLayoutError(f"data.CUB: {what} not found; looked for " + ", ".join(str(c) for c in cands))


def _table(path: Path, n: int = 2) -> list[list[str]]:
    """Whitespace-split lines (first ``n`` tokens; names may contain spaces only in the last field)."""
    if not path.is_file():
        raise CUBLayoutError(f"data.CUB: missing {path} (part of the published CUB_200_2011 layout)")
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            rows.append(line.split(None, n - 1) if n == 2 else line.split()[:n])
    return rows


class CUBIndex:
    """Parsed text files of one CUB tree: ids, names, classes, split, boxes, attributes, masks dir."""

    def __init__(self, root: str | Path, attribute_source: str = "image") -> None:
        root = Path(root)
        self.base = _base(root)
        self.warnings: list[str] = []
        self.names = {int(i): n.strip() for i, n in _table(self.base / "images.txt")}
        self.label = {int(i): int(c) - 1 for i, c in _table(self.base / "image_class_labels.txt")}
        self.train = {int(i): s.strip() == "1" for i, s in _table(self.base / "train_test_split.txt")}
        self.bbox = {int(r[0]): tuple(float(v) for v in r[1:5]) for r in _table(self.base / "bounding_boxes.txt", 5)}
        classes = _table(self.base / "classes.txt")
        names_file = _first([root / "attributes.txt", self.base / "attributes.txt",
                             self.base / "attributes" / "attributes.txt", self.base.parent / "attributes.txt"],
                            "attributes.txt (the 312 attribute names)")
        attr_names = [n.strip() for _, n in _table(names_file)]
        if attr_names != list(CUB312_NAMES):
            raise CUBLayoutError(f"data.CUB: {names_file} does not list the 312 CUB attributes in order "
                                 f"({len(attr_names)} names)")
        self.seg_dir = _first([root / "segmentations", self.base / "segmentations",
                               self.base.parent / "segmentations"], "segmentations/ (the separate segmentations.tgz)")
        self.attributes = self._attributes(attribute_source)
        self._check_counts(len(classes))

    def _attributes(self, source: str) -> dict[int, np.ndarray]:
        if source == "class":
            path = self.base / "attributes" / "class_attribute_labels_continuous.txt"
            if not path.is_file():
                raise CUBLayoutError(f"data.CUB: missing {path} (attribute_source 'class')")
            rows = [[float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()]
            per_class = (np.asarray(rows, np.float32) >= 50).astype(np.float32)  # present for >= 50 % of raters
            return {i: per_class[c] for i, c in self.label.items()}
        path = self.base / "attributes" / "image_attribute_labels.txt"
        out = {i: np.zeros(312, np.float32) for i in self.names}
        lines = 0
        for img, att, present, cert in _table(path, 4):  # first 4 tokens: some lines carry extra ones
            lines += 1
            i, a, p, c = int(img), int(att) - 1, present == "1", int(cert)
            if i in out:
                out[i][a] = (CERTAIN_PRESENT if p else CERTAIN_ABSENT)[c] if source == "certainty" else float(p)
        if lines != 312 * len(self.names):
            self.warnings.append(f"{path.name}: {lines} lines, expected 312 x {len(self.names)}")
        return out

    def _check_counts(self, n_classes: int) -> None:
        ids = set(self.names)
        for what, table in (("image_class_labels", self.label), ("train_test_split", self.train),
                            ("bounding_boxes", self.bbox)):
            if set(table) != ids:
                self.warnings.append(f"{what}.txt covers {len(table)} images, images.txt lists {len(ids)}")
        if len(ids) == CUB_IMAGES and n_classes != CUB_CLASSES:
            self.warnings.append(f"classes.txt has {n_classes} classes, expected {CUB_CLASSES}")
        elif len(ids) != CUB_IMAGES:
            self.warnings.append(f"{len(ids)} images (the full CUB-200-2011 has {CUB_IMAGES})")

    def select(self, split: str, split_mode: str) -> list[int]:
        """Image ids of a split: official (train_test_split.txt) or class-disjoint (classes 0..149 / 150..199)."""
        ids = sorted(self.names)
        if split == "all":
            return ids
        want = split == "train"
        if split_mode == "class_disjoint":
            return [i for i in ids if (self.label[i] < 150) == want]
        return [i for i in ids if self.train[i] == want]


def crop_box(bbox: tuple[float, float, float, float], w: int, h: int, ratio: float) -> tuple[int, int, int, int]:
    """Square crop around the bounding box whose side is max(bw, bh) / ratio, clipped to the image.

    ratio 0.75 is the paper's "object-image size ratio" (§4); StackGAN's code uses a side of
    1.5 max(bw, bh), i.e. ratio 0.67 (research note §1.5)."""
    x, y, bw, bh = bbox
    cx, cy, r = x + bw / 2, y + bh / 2, max(bw, bh) / ratio / 2
    return (int(max(0, cx - r)), int(max(0, cy - r)), int(min(w, cx + r)), int(min(h, cy + r)))


class CUBDataset(torch.utils.data.Dataset):
    def __init__(self, index: CUBIndex, ids: list[int], size: int, ratio: float, threshold: float | None,
                 flip: bool, seed: int) -> None:
        self.index, self.ids, self.size, self.ratio = index, ids, size, ratio
        self.threshold, self.flip, self.seed = threshold, flip, seed

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        ix, i = self.index, self.ids[k]
        rel = ix.names[i]
        img_path, seg_path = ix.base / "images" / rel, ix.seg_dir / Path(rel).with_suffix(".png")
        for p in (img_path, seg_path):
            if not p.is_file():
                raise CUBLayoutError(f"data.CUB: image {i} ({rel}): missing {p}")
        img = PILImage.open(img_path).convert("RGB")
        seg = PILImage.open(seg_path).convert("L")
        if seg.size != img.size:
            seg = seg.resize(img.size, PILImage.BILINEAR)
        if self.ratio > 0:
            box = crop_box(ix.bbox[i], img.width, img.height, self.ratio)
            img, seg = img.crop(box), seg.crop(box)
        img = img.resize((self.size, self.size), PILImage.BILINEAR)
        seg = seg.resize((self.size, self.size), PILImage.BILINEAR)
        x = torch.from_numpy(np.asarray(img, np.float32) / 255).permute(2, 0, 1)
        m = torch.from_numpy(np.asarray(seg, np.float32) / 255)[None]
        if self.threshold is not None:
            m = (m > self.threshold).float()
        if self.flip and torch.rand(1, generator=torch.Generator().manual_seed(self.seed * 100_003 + k)) < 0.5:
            x, m = x.flip(-1), m.flip(-1)
        return {"image": x.contiguous(), "mask": m.contiguous(), "attributes": torch.from_numpy(ix.attributes[i]),
                "class_id": torch.tensor(ix.label[i], dtype=torch.int64)}


@register("data.CUB")
class CUB(DatasetNode):
    """CUB-200-2011 (+ segmentations) read from the published layout: image, soft mask, the 312 ``cub312``
    attributes and the class id (0..199), cropped around the bounding box to the paper's 0.75 object
    ratio and resized. Splits: the official train_test_split.txt, or class-disjoint (150 / 50 classes).
    Attribute sources: ``image`` (is_present), ``certainty`` (ConceptBottleneck's soft labels), ``class``
    (class_attribute_labels_continuous >= 50 %)."""

    class Params(Params):
        root: InputDir = Field(description="folder holding CUB_200_2011/ (and attributes.txt, segmentations/)")
        size: int = Field(64, ge=16, le=1024, description="output side in pixels")
        split: Literal["train", "test", "all"] = "train"
        split_mode: Literal["official", "class_disjoint"] = Field(
            "official", description="the paper's Stage-II does not split by class (§4)")
        object_ratio: float = Field(0.75, ge=0, le=1, description="bbox side / crop side (0 = no crop)")
        attribute_source: Literal["image", "certainty", "class"] = "image"
        mask_threshold: float | None = Field(None, ge=0, le=1, description="binarise masks (None: soft)")
        flip: bool = Field(False, description="random horizontal flip")
        length: int = Field(0, ge=0, description="use only the first N images (0 = all)")
        seed: int = 0
        batch_size: int = Field(16, ge=1)

    outputs = {"image": Image(), "mask": Mask(), "attributes": Attributes("cub312"),
               "class_id": Tensor(rank=1, doc="class id 0..199 (int64)")}

    def dataset(self) -> CUBDataset:
        p = self.params
        index = CUBIndex(p.root, p.attribute_source)
        for w in index.warnings:
            self.ctx.warn(f"data.CUB: {w}")
        ids = index.select(p.split, p.split_mode)
        if p.length:
            ids = ids[: p.length]
        if not ids:
            raise CUBLayoutError(f"data.CUB: no images in split {p.split!r} ({p.split_mode}) under {index.base}")
        return CUBDataset(index, ids, p.size, p.object_ratio, p.mask_threshold, p.flip, p.seed)


def write_fixture(root: str | Path, classes: int = 3, per_class: int = 2, size: tuple[int, int] = (40, 30)) -> Path:
    """A tiny tree in the published layout (tests): images, masks, every text file; attributes.txt at root."""
    root = Path(root)
    base = root / "CUB_200_2011"
    rng = np.random.default_rng(0)
    lines: dict[str, list[str]] = {k: [] for k in ("images", "classes", "labels", "split", "bbox", "attrs")}
    i = 0
    for c in range(1, classes + 1):
        cdir = f"{c:03d}.Bird_{c}"
        lines["classes"].append(f"{c} {cdir}")
        for k in range(per_class):
            i += 1
            name = f"{cdir}/Bird_{c}_{k:04d}_{100 + i}.jpg"  # CUB's own case mismatch is why names come from here
            img = rng.integers(0, 255, (size[1], size[0], 3), np.uint8)
            seg = np.where(rng.random((size[1], size[0])) > 0.5, 255, 51).astype(np.uint8)  # soft grey levels
            for p, arr in ((base / "images" / name, img), ((root / "segmentations" / name).with_suffix(".png"), seg)):
                p.parent.mkdir(parents=True, exist_ok=True)
                PILImage.fromarray(arr).save(p)
            lines["images"].append(f"{i} {name}")
            lines["labels"].append(f"{i} {c}")
            lines["split"].append(f"{i} {k % 2}")
            lines["bbox"].append(f"{i} 5.0 4.0 20.0 15.0")
            for a in range(1, 313):
                extra = " 0.5 extra" if a == 7 else ""
                lines["attrs"].append(f"{i} {a} {int(rng.random() < 0.1)} {int(rng.integers(1, 5))} 3.2{extra}")
    (base / "attributes").mkdir(parents=True, exist_ok=True)
    files = {"images.txt": "images", "classes.txt": "classes", "image_class_labels.txt": "labels",
             "train_test_split.txt": "split", "bounding_boxes.txt": "bbox",
             "attributes/image_attribute_labels.txt": "attrs"}
    for fname, key in files.items():
        (base / fname).write_text("\n".join(lines[key]) + "\n")
    (root / "attributes.txt").write_text("\n".join(f"{k + 1} {n}" for k, n in enumerate(CUB312_NAMES)) + "\n")
    return root
