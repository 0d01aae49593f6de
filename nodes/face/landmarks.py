"""An offline 11-label face parser for real photos from MediaPipe's bundled models.

MediaPipe <= 0.10.21 ships face mesh (478 landmarks with iris) and selfie segmentation inside
the wheel, so nothing is downloaded at run time. Labels come from the mesh topology: the face
oval is skin, nose / brows / eyes / lips are polygons of their landmark rings, the inner lip ring
is the mouth; hair is the part of the selfie (person) mask in a head box around the face that
does not look like the cheek skin (Mahalanobis distance in Lab). It is a demo-quality parser:
features sit exactly on the face, the hair cap is plausible; it is not a substitute for P_F.

Install (the wheel's numpy<2 pin is metadata only; its opencv-contrib dependency would clash
with opencv-python-headless, hence ``--no-deps``)::

    pip install absl-py attrs flatbuffers "protobuf>=4.25.3,<5" matplotlib
    pip install --no-deps mediapipe==0.10.21        # Python 3.9-3.12 wheels only
"""

from __future__ import annotations

import os
from collections import defaultdict

import cv2
import numpy as np
from scipy import ndimage

INSTALL = ('pip install absl-py attrs flatbuffers "protobuf>=4.25.3,<5" matplotlib && '
           'pip install --no-deps mediapipe==0.10.21')

# Lip chains of the face-mesh topology (corner 61 / 291 outer, 78 / 308 inner).
OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LOWER = (291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61)
INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER = (308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78)
# Brows: lower chain then upper chain, for each side of the subject.
BROWS = (((46, 53, 52, 65, 55), (70, 63, 105, 66, 107)),
         ((276, 283, 282, 295, 285), (300, 293, 334, 296, 336)))
CANON = ((96.0, 116.0), (160.0, 116.0), (128.0, 184.0))
"""(x, y) at 256 of the image-left eye, image-right eye and lip centres (official alignment)."""


class MediaPipeMissing(ImportError):
    pass


def import_mediapipe():
    os.environ.setdefault("GLOG_minloglevel", "2")  # silence the C++ INFO / W0000 lines
    try:
        from mediapipe.python.solutions import face_mesh, face_mesh_connections, selfie_segmentation
    except ImportError as e:
        raise MediaPipeMissing(f"MediaPipe is not installed ({e}); install it with: {INSTALL}") from None
    return face_mesh, face_mesh_connections, selfie_segmentation


def ring(edges: frozenset) -> list[int]:
    """Order a closed cycle given as an undirected edge set."""
    nbr: dict[int, list[int]] = defaultdict(list)
    for a, b in edges:
        nbr[a].append(b)
        nbr[b].append(a)
    start = min(nbr)
    out, prev, cur = [start], None, start
    while True:
        nxt = [n for n in nbr[cur] if n != prev]
        if not nxt or nxt[0] == start:
            return out
        prev, cur = cur, nxt[0]
        out.append(cur)


class quiet_stderr:
    """Send file descriptor 2 to /dev/null for a while: MediaPipe's C++ code logs to it directly
    (absl "All log messages before absl::InitializeLog()...", TFLite delegate lines) on every
    run, which GLOG_minloglevel does not reach. Python-level errors are raised, not printed, so
    nothing of ours is lost."""

    def __enter__(self) -> None:
        import sys

        sys.stderr.flush()
        self.saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)

    def __exit__(self, *exc: object) -> None:
        os.dup2(self.saved, 2)
        os.close(self.saved)


def choose_faces(faces: list[np.ndarray], face: str | int) -> tuple[list[int], str]:
    """Which of the detected faces (landmark arrays, N x 2 (x, y)) to use, numbered left to right,
    and a sentence for the user when more than one was found ("" otherwise). ``face``:
    ``"largest"`` (landmark bounding box area), ``"all"``, or an index. IndexError for an index
    beyond the faces found."""
    order = sorted(range(len(faces)), key=lambda i: float(faces[i][:, 0].mean()))
    faces = [faces[i] for i in order]
    area = [float(np.ptp(f[:, 0]) * np.ptp(f[:, 1])) for f in faces]
    if face == "all":
        chosen = list(range(len(faces)))
    elif face == "largest":
        chosen = [int(np.argmax(area))]
    else:
        if int(face) >= len(faces):
            raise IndexError(f"face {face} asked for, but {len(faces)} found")
        chosen = [int(face)]
    note = ""
    if len(faces) > 1:
        which = "all of them" if face == "all" else ", ".join(
            f"face {k} (from the left; centre x={faces[k][:, 0].mean():.0f}, {np.ptp(faces[k][:, 0]):.0f} px wide"
            + (", the largest" if k == int(np.argmax(area)) else "") + ")" for k in chosen)
        note = (f"{len(faces)} faces found; used {which}. Choose with params.face: largest, "
                f"0..{len(faces) - 1} (left to right) or all")
    return [order[k] for k in chosen], note


class LandmarkFaceParser:
    """Callable: RGB uint8 image -> (labels H x W int64, landmarks 478 x 2 (x, y)) or None;
    ``faces(rgb)`` gives every face's landmarks, ``parse(rgb, pts)`` the labels for one."""

    def __init__(self, max_faces: int = 8) -> None:
        fm, conn, ss = import_mediapipe()
        with quiet_stderr():
            self.mesh = fm.FaceMesh(static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True,
                                    min_detection_confidence=0.5)
            self.selfie = ss.SelfieSegmentation(model_selection=0)
        self.oval = ring(conn.FACEMESH_FACE_OVAL)
        self.eyes = [ring(conn.FACEMESH_LEFT_EYE), ring(conn.FACEMESH_RIGHT_EYE)]
        self.nose = sorted({i for e in conn.FACEMESH_NOSE for i in e})

    def close(self) -> None:
        self.mesh.close()
        self.selfie.close()

    def faces(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Landmarks (478 x 2, (x, y) in pixels) of every face found, in MediaPipe's order."""
        with quiet_stderr():
            res = self.mesh.process(rgb)
        h, w = rgb.shape[:2]
        return [np.array([[p.x * w, p.y * h] for p in f.landmark], np.float32)
                for f in (res.multi_face_landmarks or [])]

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        found = self.faces(rgb)
        return found[choose_faces(found, "largest")[0][0]] if found else None

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        pts = self.landmarks(rgb)
        return None if pts is None else (self.parse(rgb, pts), pts)

    def parse(self, rgb: np.ndarray, pts: np.ndarray) -> np.ndarray:
        """11-label mask (H x W int64) of the face whose landmarks are ``pts``."""
        h, w = rgb.shape[:2]
        lab = np.zeros((h, w), np.uint8)

        def poly(idx, value, hull: bool = False) -> np.ndarray:
            p = pts[list(idx)]
            if hull:
                p = cv2.convexHull(p)
            m = np.zeros((h, w), np.uint8)
            cv2.fillPoly(m, [np.round(p.reshape(-1, 2) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
            lab[m > 0] = value
            return m > 0

        oval = poly(self.oval, 1)
        poly(self.nose, 6, hull=True)
        # which side is "l" (image-left) is decided by x, not by MediaPipe's subject-centric names
        brows = sorted(BROWS, key=lambda b: pts[list(b[0])][:, 0].mean())
        for k, (lower, upper) in enumerate(brows):
            poly(lower + upper[::-1], 2 + k)
        for k, eye in enumerate(sorted(self.eyes, key=lambda e: pts[e][:, 0].mean())):
            poly(eye, 4 + k)
        poly(OUTER_UPPER + INNER_UPPER[::-1], 7)
        poly(OUTER_LOWER + INNER_LOWER[::-1], 9)
        poly(INNER_UPPER + INNER_LOWER[1:-1], 8)
        with quiet_stderr():
            self._hair_and_forehead(rgb, pts, oval, lab)
        return lab.astype(np.int64)

    def _hair_and_forehead(self, rgb: np.ndarray, pts: np.ndarray, oval: np.ndarray, lab: np.ndarray) -> None:
        h, w = lab.shape
        person = self.selfie.process(rgb).segmentation_mask > 0.5
        op = pts[self.oval]
        x0, y0 = op.min(0)
        x1, y1 = op.max(0)
        fw, fh = x1 - x0, y1 - y0
        bx0, bx1 = int(max(0, x0 - 0.35 * fw)), int(min(w, x1 + 0.35 * fw + 1))
        by0, by1 = int(max(0, y0 - 0.6 * fh)), int(min(h, y0 + 0.75 * fh + 1))
        box = np.zeros_like(oval)
        box[by0:by1, bx0:bx1] = True
        cand = person & box & ~oval
        # skin colour model from the cheeks: inside the oval, between eye and lip level, no parts
        lab_img = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
        eye_y = pts[[33, 263]][:, 1].mean()
        lip_y = pts[list(OUTER_UPPER)][:, 1].mean()
        rows = np.arange(h)[:, None]
        cheeks = (lab == 1) & (rows > eye_y) & (rows < lip_y)
        if cheeks.sum() < 20:
            cheeks = lab == 1
        sample = lab_img[cheeks]
        mu = sample.mean(0)
        cov = np.cov(sample.T) + np.eye(3) * 4.0
        d = np.zeros((h, w), np.float32)
        sub = lab_img[by0:by1, bx0:bx1] - mu
        d[by0:by1, bx0:bx1] = np.sqrt(np.einsum("...i,ij,...j->...", sub, np.linalg.inv(cov), sub))
        brow_y = pts[[105, 334]][:, 1].mean()
        hair = cand & ((d > 2.5) | ((d > 1.2) & (rows < brow_y)))
        hair = cv2.morphologyEx(hair.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)) > 0
        hair = ndimage.binary_fill_holes(hair) & ~oval
        comp, n = ndimage.label(hair)
        top_band = rows < y0 + 0.1 * fh
        keep = np.unique(comp[(comp > 0) & top_band])
        hair = np.isin(comp, keep[keep > 0]) if n else hair
        lab[hair] = 10
        # skin-coloured head pixels next to the oval (forehead above the mesh, ears) are skin
        near = cv2.dilate(oval.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        extra = cand & ~hair & (d <= 2.5) & near & (rows < lip_y)
        lab[extra & (lab == 0)] = 1


def alignment(pts: np.ndarray, labels: np.ndarray, size: int) -> np.ndarray:
    """2 x 3 similarity taking eye and lip centres to the official canonical positions at ``size``."""
    eyes = []
    for k in (4, 5):
        ys, xs = np.nonzero(labels == k)
        eyes.append((xs.mean(), ys.mean()))
    lips = pts[list(OUTER_UPPER + OUTER_LOWER)].mean(0)
    z = np.array([complex(*e) for e in eyes] + [complex(*lips)])
    t = np.array([complex(*c) for c in CANON]) * size / 256
    # least-squares similarity t ~ a z + b in complex form (rotation + uniform scale + shift)
    zc, tc = z - z.mean(), t - t.mean()
    a = (tc * zc.conjugate()).sum() / (np.abs(zc) ** 2).sum()
    b = t.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], np.float64)
