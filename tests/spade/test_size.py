"""spade.Generator's ``size`` keeps the label map's aspect ratio and says when it changes more than
a uniform scaling (issue 19 §2, BR-2-13: a 3:2 map came out 128x128, squashed, without a word)."""

from __future__ import annotations

import torch

from nodegraph.node import Context
from nodes.spade.nodes import Generator, _fit_size


def _node(size: int) -> tuple[Generator, list[str]]:
    said: list[str] = []
    ctx = Context(emit=lambda ev, **kw: said.append(kw["message"]) if ev == "warning" else None)
    node = Generator({"preset": "landscape", "size": size, "weights": ""}, ctx)
    node.ensure_setup()
    return node, said


def _run(h: int, w: int, size: int) -> tuple[tuple[int, ...], list[str]]:
    """The size the node gives an h x w map, and what it warned (without running the network)."""
    node, said = _node(size)
    return node._fit((h, w)), [m for m in said if "resized" in m]


def test_a_3_by_2_map_keeps_its_shape() -> None:
    """100 x 150 at size 128: 96 x 128 (3:2 as near as multiples of 32 allow), with a warning
    naming the aspect change; size 100: 64 x 96 (exactly 3:2), with a warning naming the width.
    Mutant killed: the map resized to size x size (the official square default)."""
    hw, said = _run(100, 150, 128)
    assert hw == (96, 128) and len(said) == 1 and "aspect ratio 1.50 became 1.33" in said[0]
    hw, said = _run(100, 150, 100)
    assert hw == (64, 96) and len(said) == 1 and "size 100 is not a multiple of 32" in said[0]
    node, _ = _node(100)  # and the picture really has that shape
    assert node(labels=torch.zeros(1, 100, 150, dtype=torch.long))["image"].shape == (1, 3, 64, 96)


def test_uniform_scaling_is_silent() -> None:
    """A 2:1 map at size 128 becomes 64 x 128, a square one 128 x 128: nothing to warn about."""
    assert _run(50, 100, 128) == ((64, 128), [])
    assert _run(40, 40, 128) == ((128, 128), [])


def test_fit_size_rule() -> None:
    assert _fit_size((100, 150), 256, 5) == ((160, 256), "aspect ratio 1.50 became 1.60 (sides must be "
                                                         "multiples of 32)")
    assert _fit_size((480, 640), 256, 5) == ((192, 256), "")
