"""Named attribute schemas used by the node library (registered with the engine by name, like
``labelsets.py`` does for label maps; the engine only compares names and sizes).

``cub312`` is CUB-200-2011's attribute list: 312 binary attributes in 28 groups, in the order of
the dataset's ``attributes.txt`` (``has_bill_shape::curved_(up_or_down)`` is id 1, index 0). The
group order and value names follow the published list (as copied in mateoespinosa/cem
``cub_loader.py`` and yewsiang/ConceptBottleneck); notes on it: ``has_eye_color`` has 14 values
(no ``iridescent``), ``has_size`` is not in ordinal order.

Subsets (the split the stacked attribute GAN uses, Zhao "Realistic Image Generation via
Cross-domain Information" §3; the paper does not list its groups, the split below is the natural
one of research note §1.3):

- ``shape`` (42): bill shape, tail shape, bill length, wing shape, size, body plan (``has_shape``);
- ``non_shape`` (270): every colour and pattern group. ``has_head_pattern::crested`` stays here
  (it is a head *pattern* in CUB), so the procedural birds draw a crest as crown plumage, not as
  a change of silhouette;
- ``colour`` (239) and ``pattern`` (31), the two halves of ``non_shape``.
"""

from __future__ import annotations

import difflib

from nodegraph.types import AttributeSchema, register_attribute_schema

COLOURS = ("blue", "brown", "iridescent", "purple", "rufous", "grey", "yellow", "olive", "green",
           "pink", "orange", "black", "white", "red", "buff")
EYE_COLOURS = tuple(c for c in COLOURS if c != "iridescent")
PATTERNS = ("solid", "spotted", "striped", "multi-colored")

BILL_SHAPES = ("curved_(up_or_down)", "dagger", "hooked", "needle", "hooked_seabird", "spatulate",
               "all-purpose", "cone", "specialized")
TAIL_SHAPES = ("forked_tail", "rounded_tail", "notched_tail", "fan-shaped_tail", "pointed_tail", "squared_tail")
HEAD_PATTERNS = ("spotted", "malar", "crested", "masked", "unique_pattern", "eyebrow", "eyering", "plain",
                 "eyeline", "striped", "capped")
BILL_LENGTHS = ("about_the_same_as_head", "longer_than_head", "shorter_than_head")
WING_SHAPES = ("rounded-wings", "pointed-wings", "broad-wings", "tapered-wings", "long-wings")
SIZES = ("large_(16_-_32_in)", "small_(5_-_9_in)", "very_large_(32_-_72_in)", "medium_(9_-_16_in)",
         "very_small_(3_-_5_in)")
BODY_PLANS = ("upright-perching_water-like", "chicken-like-marsh", "long-legged-like", "duck-like", "owl-like",
              "gull-like", "hummingbird-like", "pigeon-like", "tree-clinging-like", "hawk-like", "sandpiper-like",
              "upland-ground-like", "swallow-like", "perching-like")

# (group, values, kind) in attributes.txt order; kind is shape / colour / pattern.
CUB_GROUPS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("has_bill_shape", BILL_SHAPES, "shape"),
    ("has_wing_color", COLOURS, "colour"),
    ("has_upperparts_color", COLOURS, "colour"),
    ("has_underparts_color", COLOURS, "colour"),
    ("has_breast_pattern", PATTERNS, "pattern"),
    ("has_back_color", COLOURS, "colour"),
    ("has_tail_shape", TAIL_SHAPES, "shape"),
    ("has_upper_tail_color", COLOURS, "colour"),
    ("has_head_pattern", HEAD_PATTERNS, "pattern"),
    ("has_breast_color", COLOURS, "colour"),
    ("has_throat_color", COLOURS, "colour"),
    ("has_eye_color", EYE_COLOURS, "colour"),
    ("has_bill_length", BILL_LENGTHS, "shape"),
    ("has_forehead_color", COLOURS, "colour"),
    ("has_under_tail_color", COLOURS, "colour"),
    ("has_nape_color", COLOURS, "colour"),
    ("has_belly_color", COLOURS, "colour"),
    ("has_wing_shape", WING_SHAPES, "shape"),
    ("has_size", SIZES, "shape"),
    ("has_shape", BODY_PLANS, "shape"),
    ("has_back_pattern", PATTERNS, "pattern"),
    ("has_tail_pattern", PATTERNS, "pattern"),
    ("has_belly_pattern", PATTERNS, "pattern"),
    ("has_primary_color", COLOURS, "colour"),
    ("has_leg_color", COLOURS, "colour"),
    ("has_bill_color", COLOURS, "colour"),
    ("has_crown_color", COLOURS, "colour"),
    ("has_wing_pattern", PATTERNS, "pattern"),
)

CUB312_NAMES: tuple[str, ...] = tuple(f"{g}::{v}" for g, vals, _ in CUB_GROUPS for v in vals)
assert len(CUB312_NAMES) == 312

GROUP_SLICES: dict[str, slice] = {}
"""group name -> its slice of the 312-vector (``has_wing_color`` -> slice(9, 24))."""
_KIND_INDICES: dict[str, list[int]] = {"shape": [], "colour": [], "pattern": []}
_i = 0
for _g, _vals, _kind in CUB_GROUPS:
    GROUP_SLICES[_g] = slice(_i, _i + len(_vals))
    _KIND_INDICES[_kind].extend(range(_i, _i + len(_vals)))
    _i += len(_vals)

SHAPE = tuple(_KIND_INDICES["shape"])
NON_SHAPE = tuple(sorted(_KIND_INDICES["colour"] + _KIND_INDICES["pattern"]))
assert len(SHAPE) == 42 and len(NON_SHAPE) == 270

CUB312 = register_attribute_schema(AttributeSchema(
    name="cub312",
    names=CUB312_NAMES,
    subsets=(("shape", SHAPE), ("non_shape", NON_SHAPE),
             ("colour", tuple(_KIND_INDICES["colour"])), ("pattern", tuple(_KIND_INDICES["pattern"]))),
))


def index_of(name: str) -> int:
    """Index of a CUB attribute name in the 312-vector; KeyError listing near matches."""
    try:
        return CUB312_NAMES.index(name)
    except ValueError:
        raise KeyError(unknown_name_message(name)) from None


def unknown_name_message(name: str) -> str:
    """'... is not a cub312 attribute; near matches: ...' with the closest names (difflib)."""
    return _unknown(name, list(CUB312_NAMES), "cub312")


def vector_from_json(obj: object, schema: AttributeSchema, item: int = 0) -> list[float]:
    """One attribute vector from a JSON object ``{name: value}`` in ``schema``'s names.

    A value is 0/1 (or true/false) or a certainty in [0, 1]. A *group* (the part of a name before
    ``::``) may map to a value name or a list of them: ``{"has_wing_color": ["black", "white"]}``.
    Unnamed attributes are 0. ValueError (listing near matches for unknown names) on bad input.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"item {item}: expected a JSON object of attribute names, got {type(obj).__name__}")
    names = list(schema.names)
    pos = {n: i for i, n in enumerate(names)}
    groups = {n.split("::")[0] for n in names if "::" in n}
    out = [0.0] * len(names)
    for key, value in obj.items():
        if key in groups and isinstance(value, (str, list)):
            for v in [value] if isinstance(value, str) else value:
                full = f"{key}::{v}"
                if full not in pos:
                    raise ValueError(f"item {item}: {_unknown(full, names, schema.name)}")
                out[pos[full]] = 1.0
            continue
        if key not in pos:
            raise ValueError(f"item {item}: {_unknown(key, names, schema.name)}")
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"item {item}: {key!r} must be 0/1 or a certainty in [0, 1], got {value!r}")
        out[pos[key]] = float(value)
    return out


def _unknown(name: str, names: list[str], schema: str) -> str:
    near = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
    if not near:
        stem = name.split("::")[-1].lower()
        near = [n for n in names if stem and stem in n.lower()][:4]
    hint = f"; near matches: {', '.join(near)}" if near else f"; names look like {names[0]!r}"
    return f"{name!r} is not a {schema} attribute{hint}"
