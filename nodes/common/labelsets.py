"""Named label sets used by the node library (registered with the engine by name).

Each family owns its section: ``landscape`` and the SPADE dataset sets (``ade20k``, ``coco``,
``cityscapes``) belong to the SPADE family; ``celebamask11`` to the portrait family.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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
# The palette is what a user paints with: colours far apart (>= 60 in RGB distance) so an
# anti-aliased or slightly re-coloured drawing still snaps to the intended class.
LANDSCAPE = register_label_set(LabelSet(
    name="landscape",
    names=("sky", "cloud", "mountain", "rock", "snow", "water", "sand", "grass", "tree", "dirt"),
    palette=(
        (110, 170, 230),  # sky
        (200, 200, 215),  # cloud
        (120, 100, 140),  # mountain
        (80, 80, 80),     # rock
        (255, 255, 255),  # snow
        (30, 70, 180),    # water
        (230, 210, 140),  # sand
        (110, 200, 60),   # grass
        (20, 100, 40),    # tree
        (150, 95, 45),    # dirt
    ),
))

# ---- SPADE dataset conventions ---------------------------------------------------------------
# Ids as the official SPADE loaders feed them to the network. The id len(names) is the
# "don't care" channel where the dataset has one (ADE20K: PNG 0 -> 150; COCO-Stuff: 255 -> 182).

ADE20K_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper",
    "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table",
    "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table",
    "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island",
    "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman",
    "bottle", "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy",
    "washer", "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot",
    "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce",
    "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)
ADE20K = register_label_set(LabelSet(
    name="ade20k", names=ADE20K_NAMES, palette=_palette(151, seed=1), ignore_index=150))

# What a pixel of the datasets' published annotation PNGs means, read as SPADE's loaders read it
# (``io.LoadLabelMap`` with ``format: dataset``; the readers in nodes/data do the same per item):
# ADEChallengeData2016 stores class k as k + 1 and 0 for unlabelled; COCO-Stuff's stuffthingmaps
# store the id itself and 255 for unlabelled. Both map unlabelled to the "don't care" id.
DATASET_PNG: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ade20k": lambda v: np.where(v == 0, 150, v - 1),
    "coco": lambda v: np.where(v == 255, 182, v),
}

# The procedural landscape classes in ADE20K's vocabulary (ADE20K has no cloud or snow class:
# clouds are annotated as sky, snowy peaks as mountain). examples/ade20k_landscape_01.png is
# examples/landscape_01.png relabelled with it and stored as an ADE20K annotation PNG.
LANDSCAPE_TO_ADE20K = {"sky": "sky", "cloud": "sky", "mountain": "mountain", "rock": "rock",
                       "snow": "mountain", "water": "water", "sand": "sand", "grass": "grass",
                       "tree": "tree", "dirt": "earth"}

# COCO-Stuff: id = COCO category id - 1 for things (0..90, the 11 ids COCO never used kept as
# named placeholders so ids line up) and 91..181 for stuff.
COCO_THINGS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird",
    "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "hat", "backpack",
    "umbrella", "shoe", "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon", "bowl",
    "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut",
    "cake", "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window", "desk",
    "toilet", "door", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave",
    "oven", "toaster", "sink", "refrigerator", "blender", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush", "hair brush",
)
COCO_STUFF = (
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage",
    "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter",
    "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble",
    "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower", "fog", "food-other", "fruit",
    "furniture-other", "grass", "gravel", "ground-other", "hill", "house", "leaves", "light", "mat",
    "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper", "pavement",
    "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad", "river",
    "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent", "textile-other",
    "towel", "tree", "vegetable", "wall-brick", "wall-concrete", "wall-other", "wall-panel",
    "wall-stone", "wall-tile", "wall-wood", "water-other", "waterdrops", "window-blind",
    "window-other", "wood",
)
assert len(COCO_THINGS) == 91 and len(COCO_STUFF) == 91
COCO = register_label_set(LabelSet(
    name="coco", names=COCO_THINGS + COCO_STUFF, palette=_palette(183, seed=2), ignore_index=182))

# Cityscapes labelIds 0..33 (+ license plate, id -1 in the official table, placed at 34):
# SPADE's label_nc = 35 with no don't-care channel.
CITYSCAPES_NAMES = (
    "unlabeled", "ego vehicle", "rectification border", "out of roi", "static", "dynamic", "ground",
    "road", "sidewalk", "parking", "rail track", "building", "wall", "fence", "guard rail", "bridge",
    "tunnel", "pole", "polegroup", "traffic light", "traffic sign", "vegetation", "terrain", "sky",
    "person", "rider", "car", "truck", "bus", "caravan", "trailer", "train", "motorcycle", "bicycle",
    "license plate",
)
CITYSCAPES = register_label_set(LabelSet(
    name="cityscapes", names=CITYSCAPES_NAMES, palette=_palette(35, seed=3)))

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
