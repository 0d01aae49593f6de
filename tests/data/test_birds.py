"""data.Birds and the cub312 schema: the layout matches CUB's published attribute list, items are
deterministic by (seed, index), and the renderer draws what the vector says (shape attributes move
the silhouette, colour attributes only the pixels inside it)."""

from __future__ import annotations

import numpy as np
import torch

from nodegraph.types import get_attribute_schema
from nodes.common.attrsets import CUB312_NAMES, GROUP_SLICES, NON_SHAPE, SHAPE, index_of
from nodes.data import birds
from nodes.data.bird_render import BirdSpec


def test_cub312_layout_matches_the_published_list() -> None:
    # ids from attributes.txt (1-based): 1 bill shape curved, 150 bill length same as head,
    # 218 size large, 236 perching-like, 249 primary blue, 312 wing pattern multi-colored
    assert CUB312_NAMES[0] == "has_bill_shape::curved_(up_or_down)"
    assert CUB312_NAMES[149] == "has_bill_length::about_the_same_as_head"
    assert CUB312_NAMES[217] == "has_size::large_(16_-_32_in)"
    assert CUB312_NAMES[235] == "has_shape::perching-like"
    assert CUB312_NAMES[248] == "has_primary_color::blue"
    assert CUB312_NAMES[311] == "has_wing_pattern::multi-colored"
    assert GROUP_SLICES["has_eye_color"] == slice(135, 149)  # 14 values: no iridescent
    schema = get_attribute_schema("cub312")
    assert len(schema) == 312 and schema.size("shape") == 42 and schema.size("non_shape") == 270
    assert set(SHAPE).isdisjoint(NON_SHAPE) and len(set(SHAPE) | set(NON_SHAPE)) == 312


def test_items_are_deterministic_and_well_formed() -> None:
    a, b = birds.make_bird(7, seed=3), birds.make_bird(7, seed=3)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(a["image"], birds.make_bird(8, seed=3)["image"])
    assert a["image"].shape == (3, 64, 64) and a["mask"].shape == (1, 64, 64)
    m = a["mask"]
    assert 0.05 < float(m.mean()) < 0.6 and bool(((m > 0.02) & (m < 0.98)).any())  # soft edges
    v = a["attributes"]
    for g in ("has_bill_shape", "has_tail_shape", "has_bill_length", "has_wing_shape", "has_size", "has_shape",
              "has_head_pattern", "has_breast_pattern"):
        assert float(v[GROUP_SLICES[g]].sum()) == 1.0, g  # one value per shape / pattern group
    assert float(v[GROUP_SLICES["has_wing_color"]].sum()) >= 1.0
    assert 0 <= int(a["class_id"]) < 200


def test_class_disjoint_split() -> None:
    train = {int(birds.make_bird(i, classes="train")["class_id"]) for i in range(40)}
    test = {int(birds.make_bird(i, classes="test")["class_id"]) for i in range(40)}
    assert max(train) < 150 <= min(test)


def _spec(**kw) -> BirdSpec:
    base = birds.species(3)
    return BirdSpec(**{**base.__dict__, **kw})


def test_shape_attributes_drive_the_silhouette_and_colours_only_paint() -> None:
    """Mutant caught: painting the bill with the body colour, or ignoring bill_length in geometry."""
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    short = birds.render(_spec(bill_length="shorter_than_head"), rng(), 64, jitter=False)
    long = birds.render(_spec(bill_length="longer_than_head"), rng(), 64, jitter=False)
    assert float(np.abs(short[1] - long[1]).sum()) > 4  # a longer bill adds pixels
    cols = {k: list(v) for k, v in _spec().colours.items()}
    cols["breast"] = ["red"] if cols["breast"][0] != "red" else ["blue"]
    recol = birds.render(_spec(colours=cols), rng(), 64, jitter=False)
    base = birds.render(_spec(), rng(), 64, jitter=False)
    assert np.array_equal(recol[1], base[1])  # same silhouette
    changed = np.abs(recol[0] - base[0]).sum(-1) > 0.1
    assert changed.any() and not (changed & (base[1] < 0.01)).any()  # only inside the bird


def test_attribute_vector_round_trips_the_shape_groups() -> None:
    spec = birds.vary(birds.species(11), np.random.default_rng(1))
    v = birds.attributes(spec)
    got = birds.shape_part(v)
    assert got == {k: getattr(spec, k) for k in got}
    assert float(v[index_of(f"has_breast_color::{spec.colours['breast'][0]}")]) == 1.0
