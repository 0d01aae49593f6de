"""face.LandmarkParser with several faces in a photo (issue 19 §2, BR-2-23: the second face was
dropped silently): it says how many it found and which it used, and ``face`` chooses. MediaPipe
is replaced by a stand-in that "finds" given landmark sets, so this runs without the extra."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodegraph.node import Context, NodeError
from nodes.face.landmarks import choose_faces
from nodes.face.nodes import LandmarkParser


def _face(cx: float, width: float) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 478)
    return np.stack([cx + width / 2 * np.cos(t), 40 + width / 2 * np.sin(t)], 1).astype(np.float32)


SMALL_LEFT, BIG_RIGHT = _face(20, 16), _face(70, 40)


class FakeMesh:
    """Finds the given faces (in MediaPipe's arbitrary order); labels each face's box with its width."""

    def __init__(self, faces: list[np.ndarray]) -> None:
        self.found = faces

    def faces(self, rgb: np.ndarray) -> list[np.ndarray]:
        return list(self.found)

    def parse(self, rgb: np.ndarray, pts: np.ndarray) -> np.ndarray:
        lab = np.zeros(rgb.shape[:2], np.int64)
        x0, y0 = pts.min(0).astype(int)
        x1, y1 = pts.max(0).astype(int)
        lab[max(y0, 0):y1, max(x0, 0):x1] = 1
        return lab


def _parser(face, faces=(BIG_RIGHT, SMALL_LEFT)) -> tuple[LandmarkParser, list[str]]:
    said: list[str] = []
    node = LandmarkParser({"align": False, "face": face},
                          Context(node_id="parse", emit=lambda ev, **kw: said.append(kw.get("message", ""))
                                  if ev == "warning" else None))
    node.parser, node._ready = FakeMesh(list(faces)), True
    return node, said


IMAGE = torch.zeros(1, 3, 96, 120)


def test_two_faces_default_uses_the_largest_and_says_so() -> None:
    """Mutant killed: ``multi_face_landmarks[0]`` (whichever MediaPipe lists first) without a word."""
    node, said = _parser("largest", faces=(SMALL_LEFT, BIG_RIGHT))
    out = node(image=IMAGE)
    assert out["labels"].shape[0] == 1
    assert abs(float(out["landmarks"][0, :, 0].mean()) - 70) < 1  # the big face on the right
    assert len(said) == 1 and "2 faces found" in said[0] and "face 1" in said[0] and "the largest" in said[0]
    assert "params.face" in said[0]


def test_index_and_all() -> None:
    node, _ = _parser(0)
    assert abs(float(node(image=IMAGE)["landmarks"][0, :, 0].mean()) - 20) < 1  # 0 = leftmost
    node, said = _parser("all")
    out = node(image=IMAGE)
    assert out["labels"].shape[0] == 2 and out["image"].shape[0] == 2 and "used all of them" in said[0]
    node, _ = _parser(5)
    with pytest.raises(NodeError, match=r"parse.params.face: face 5 asked for, but 2 found"):
        node(image=IMAGE)


def test_one_face_is_silent_and_none_names_the_node() -> None:
    node, said = _parser("largest", faces=(BIG_RIGHT,))
    node(image=IMAGE)
    assert said == []
    node, _ = _parser("largest", faces=())
    with pytest.raises(NodeError, match="^parse: no face found in image 0"):
        node(image=IMAGE)


def test_choose_faces_numbers_left_to_right() -> None:
    chosen, note = choose_faces([BIG_RIGHT, SMALL_LEFT], 0)
    assert chosen == [1] and "face 0" in note
