"""data.Portraits ``hair``: the wide hair-colour distribution (issue 17: hair codes that carry hue).

Mutants run by hand and killed: the wide draw taken from the face's own stream (the face changes)
-> test_wide_changes_only_the_hair; 'wide' returning the natural colour -> test_wide_covers_hues.
"""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from scipy import ndimage

from nodes.data.portrait_render import render
from nodes.data.portraits import Portraits


def test_wide_changes_only_the_hair():
    for i in range(6):
        a, b = render(31, i, 96), render(31, i, 96, hair="wide")
        assert (a.labels == b.labels).all()
        if a.attrs["beard"]:
            continue  # a beard (labelled skin) takes the hair colour too
        # hair and the brows that follow it, and their anti-aliased rims (<= 3 px)
        far = ndimage.distance_transform_edt(~np.isin(a.labels, (2, 3, 10))) > 3
        assert np.abs(a.image - b.image)[far].max() < 1e-6
        assert np.abs(a.image - b.image)[a.labels == 10].mean() > 0.01


def test_wide_covers_hues():
    hues = []
    for i in range(60):
        s = render(5, i, 64, hair="wide")
        r, g, b = s.attrs["hair"]
        h, sat, _ = colorsys.rgb_to_hsv(r, g, b)
        if sat > 0.3:
            hues.append(h)
    counts = np.histogram(hues, bins=6, range=(0, 1))[0]
    assert (counts > 0).all(), counts  # every sixth of the hue circle, blue and green included
    natural = [render(5, i, 64).attrs["hair"] for i in range(60)]
    assert sum(1 for c in natural if c[2] > c[0] + 0.1) < 6  # blue-dominant hair is rare there


def test_node_param_and_error():
    ds = Portraits({"size": 64, "count": 2, "hair": "wide"}).dataset()
    assert ds[0]["image"].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="hair must be one of"):
        render(0, 0, 64, hair="rainbow")
