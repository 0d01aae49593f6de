"""CelebAMask-HQ in its published on-disk layout, mapped to the 11-label ``celebamask11`` set.

Layout (Lee et al., CVPR 2020 release)::

    ROOT/CelebA-HQ-img/<i>.jpg                                  (i = 0..29999, 1024 x 1024)
    ROOT/CelebAMask-HQ-mask-anno/<i // 2000>/<i:05d>_<part>.png  (512 x 512, white on black; a file
                                                                  is absent when the part is)
    ROOT/CelebA-HQ-to-CelebA-mapping.txt                         (idx orig_idx orig_file)

The official split (CelebAMask-HQ ``g_partition.py``) is by CelebA index: train < 162771 <=
val < 182638 <= test. The dataset is licensed for non-commercial research only: it is never in
the repository; tests write a tiny fixture in the same layout (:func:`write_fixture`).

19 -> 11 mapping (paint order skin, nose, brows, eyes, lips, mouth, hair last): skin and both
ears -> 1, nose -> 6, u_lip -> 7, mouth -> 8, l_lip -> 9, hair and hat -> 10; neck, neck_l,
cloth, ear_r -> 0; eye_g is not painted (the eye masks under glasses exist). Which eye or brow is
"l" is decided per image by x-centroid (smaller x -> l = 2 / 4), which is robust to the two
conventions in circulation and to flips.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

PARTS = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
         "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
"""The 18 annotated parts, in CelebAMask-HQ ``g_mask.py`` order (ids 1..18 of ``celebamask19``)."""
BISENET_ORDER = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear",
                 "ear_r", "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat")
"""Class order of face-parsing.PyTorch / BiSeNet ``79999_iter.pth`` (19 outputs)."""

TO11 = {"skin": 1, "l_ear": 1, "r_ear": 1, "nose": 6, "u_lip": 7, "mouth": 8, "l_lip": 9,
        "hair": 10, "hat": 10}
PAINT_ORDER = ("skin", "l_ear", "r_ear", "nose", "brow", "eye", "u_lip", "mouth", "l_lip", "hair", "hat")
TRAIN_END, VAL_END = 162771, 182638


def _centroid_x(mask: np.ndarray) -> float:
    xs = np.nonzero(mask)[1]
    return float(xs.mean()) if xs.size else float("nan")


def paint_pair(out: np.ndarray, a: np.ndarray | None, b: np.ndarray | None, left_id: int,
               face_cx: float) -> None:
    """Paint two symmetric parts with ``left_id`` for the image-left one, ``left_id + 1`` else.

    With both present, the smaller x-centroid is "left"; a lone part is "left" when its centroid
    lies left of the face centre ``face_cx``.
    """
    parts = [m for m in (a, b) if m is not None and m.any()]
    if not parts:
        return
    if len(parts) == 2:
        xa, xb = _centroid_x(parts[0]), _centroid_x(parts[1])
        left, right = (parts[0], parts[1]) if xa <= xb else (parts[1], parts[0])
        out[left] = left_id
        out[right] = left_id + 1
    else:
        out[parts[0]] = left_id if _centroid_x(parts[0]) < face_cx else left_id + 1


def compose11(parts: dict[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """An 11-label map (int64) from binary part masks named as in :data:`PARTS`."""
    out = np.zeros(shape, np.int64)
    face = parts.get("skin")
    face_cx = _centroid_x(face) if face is not None and face.any() else shape[1] / 2
    for name in PAINT_ORDER:
        if name == "brow":
            paint_pair(out, parts.get("l_brow"), parts.get("r_brow"), 2, face_cx)
        elif name == "eye":
            paint_pair(out, parts.get("l_eye"), parts.get("r_eye"), 4, face_cx)
        elif name in parts:
            out[parts[name]] = TO11[name]
    return out


def map19_to_11(labels: np.ndarray, order: tuple[str, ...] = BISENET_ORDER) -> np.ndarray:
    """Map one H x W 19-class map (classes named by ``order``) to ``celebamask11``.

    eye_g (from a parser's argmax: the glasses frame) becomes skin; l/r by x-centroid.
    """
    parts = {name: labels == i for i, name in enumerate(order) if name != "background"}
    out = compose11(parts, labels.shape)
    out[(parts["eye_g"]) & (out == 0)] = 1
    return out


# ---- reading --------------------------------------------------------------------------------------

def read_mapping(root: Path) -> list[tuple[int, int]]:
    """(idx, orig_idx) rows of ``CelebA-HQ-to-CelebA-mapping.txt``."""
    path = Path(root) / "CelebA-HQ-to-CelebA-mapping.txt"
    rows = []
    for line in path.read_text().splitlines()[1:]:
        f = line.split()
        if len(f) >= 2:
            rows.append((int(f[0]), int(f[1])))
    return rows


def split_ids(root: Path, split: str) -> list[int]:
    """Image ids of the official split (``train`` / ``val`` / ``test`` / ``all``)."""
    rows = read_mapping(root)
    pick = {"train": lambda o: o < TRAIN_END, "val": lambda o: TRAIN_END <= o < VAL_END,
            "test": lambda o: o >= VAL_END, "all": lambda o: True}[split]
    return sorted(i for i, o in rows if pick(o))


def read_parts(root: Path, idx: int) -> dict[str, np.ndarray]:
    """Binary masks of the parts present for image ``idx`` (absent files are absent keys)."""
    folder = Path(root) / "CelebAMask-HQ-mask-anno" / str(idx // 2000)
    out = {}
    for name in PARTS:
        p = folder / f"{idx:05d}_{name}.png"
        if p.is_file():
            m = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if m is None:
                raise OSError(f"cannot read CelebAMask-HQ mask {p}")
            if m.ndim == 3:  # masks are sometimes stored as 3 identical channels
                m = m[..., 0]
            out[name] = m != 0
    return out


def read_sample(root: Path, idx: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(image H x W x 3 float32 0..1, labels H x W int64) at ``size`` x ``size``."""
    ip = Path(root) / "CelebA-HQ-img" / f"{idx}.jpg"
    bgr = cv2.imread(str(ip), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"CelebAMask-HQ image {ip} is missing or unreadable")
    img = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA)
    parts = read_parts(root, idx)
    shape = next(iter(parts.values())).shape if parts else (size, size)
    lab = compose11(parts, shape)
    lab = cv2.resize(lab.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST).astype(np.int64)
    return img.astype(np.float32) / 255, lab


# ---- fixture --------------------------------------------------------------------------------------

def write_fixture(root: Path, n: int = 6, size: int = 64, seed: int = 0) -> Path:
    """A tiny dataset in the published layout, drawn from procedural portraits.

    Ids are spread over the three official splits (orig_idx below / within / above the val
    range). Ids 1 and 4 lack a mouth file; the eye files follow the "r_* is image-left"
    convention on even ids and the opposite on odd ids, so the x-centroid rule is exercised.
    """
    from .portrait_render import render

    root = Path(root)
    (root / "CelebA-HQ-img").mkdir(parents=True, exist_ok=True)
    lines = ["idx orig_idx orig_file"]
    origs = [1000, 170000, 190000]
    for i in range(n):
        s = render(seed, i, size * 2)
        img = (s.image * 255).round().astype(np.uint8)
        cv2.imwrite(str(root / "CelebA-HQ-img" / f"{i}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        lab = cv2.resize(s.labels.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
        flip = i % 2 == 0  # even ids: image-left parts are stored as r_*
        names = {1: "skin", 6: "nose", 7: "u_lip", 8: "mouth", 9: "l_lip", 10: "hair",
                 2: "r_brow" if flip else "l_brow", 3: "l_brow" if flip else "r_brow",
                 4: "r_eye" if flip else "l_eye", 5: "l_eye" if flip else "r_eye"}
        folder = root / "CelebAMask-HQ-mask-anno" / str(i // 2000)
        folder.mkdir(parents=True, exist_ok=True)
        face = np.isin(lab, list(range(1, 10)))  # the skin file covers the whole face
        for lid, name in names.items():
            m = face if name == "skin" else lab == lid
            if name == "mouth" and i in (1, 4) or not m.any():
                continue
            cv2.imwrite(str(folder / f"{i:05d}_{name}.png"), (m * 255).astype(np.uint8))
        neck = np.zeros_like(face)
        neck[int(size * 0.9):, size // 3: 2 * size // 3] = True
        cv2.imwrite(str(folder / f"{i:05d}_neck.png"), (neck * 255).astype(np.uint8))
        lines.append(f"{i} {origs[i % 3] + i} {100000 + i:06d}.jpg")
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(lines) + "\n")
    return root
