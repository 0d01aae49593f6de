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
# "l" is image-left. Colours: distinct, and the same part keeps its colour in celebamask19.
CELEBAMASK11 = register_label_set(LabelSet(
    name="celebamask11",
    names=("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "mouth",
           "l_lip", "hair"),
    palette=(
        (0, 0, 0),        # background
        (204, 0, 0),      # skin
        (0, 255, 255),    # l_brow
        (255, 204, 204),  # r_brow
        (51, 51, 255),    # l_eye
        (204, 0, 204),    # r_eye
        (76, 153, 0),     # nose
        (255, 255, 0),    # u_lip
        (102, 204, 0),    # mouth
        (0, 0, 153),      # l_lip
        (0, 0, 204),      # hair
    ),
))

# ---- celebamask19 (CelebAMask-HQ g_mask.py order: 0 background + the 18 annotated parts) -------
CELEBAMASK19 = register_label_set(LabelSet(
    name="celebamask19",
    names=("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear",
           "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"),
    palette=(
        (0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204),
        (0, 255, 255), (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0),
        (0, 0, 153), (0, 0, 204), (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51),
        (0, 204, 0),
    ),
))
