"""Named label sets used by the node library (registered with the engine by name).

Each family owns its section: ``landscape`` and the SPADE dataset sets (``ade20k``, ``coco``,
``cityscapes``) belong to the SPADE family; ``celebamask11`` to the portrait family.
"""

from __future__ import annotations

from nodegraph.types import LabelSet, register_label_set


def _palette(n: int, seed: int = 0) -> tuple[tuple[int, int, int], ...]:
    """A deterministic, well-spread palette (the PASCAL bit-interleaving scheme)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i + seed
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return tuple(out)


# ---- landscape (procedural SPADE default) ----------------------------------------------------
LANDSCAPE = register_label_set(LabelSet(
    name="landscape",
    names=("sky", "cloud", "mountain", "rock", "snow", "water", "sand", "grass", "tree", "dirt"),
    palette=(
        (110, 170, 230),  # sky
        (235, 235, 240),  # cloud
        (120, 100, 140),  # mountain
        (128, 128, 128),  # rock
        (255, 255, 255),  # snow
        (40, 90, 200),    # water
        (230, 210, 140),  # sand
        (90, 180, 60),    # grass
        (20, 100, 40),    # tree
        (140, 95, 55),    # dirt
    ),
))

# ---- celebamask11 (Helen 11-class order used by mask-guided portrait editing) ---------------
CELEBAMASK11 = register_label_set(LabelSet(
    name="celebamask11",
    names=("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "mouth",
           "l_lip", "hair"),
    palette=_palette(11),
))
