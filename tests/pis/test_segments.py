"""Segment-wise PhotoWCT: labels on one side only, the official relabelling, the graph.

FastPhotoStyle (photo_wct.py) transfers a content label only from the same style label, when
both have > 10 pixels and their counts differ < 100x; content pixels of any other label keep
their content features; style labels the content lacks are ignored; with no usable label the
content passes through untransferred. Its ADE20K path (process_stylization_ade20k_ssn.py,
SegReMapping.cross_remapping) first relabels one-sided segments with a relation table, which
``pis.PhotoWCT``'s ``related`` param provides.

Mutants run by hand and killed (the test that fails):
- the old fallback "no usable label -> global transfer" -> test_no_usable_label_passes_content_through;
- content-only pixels transferred from the whole style instead of kept -> test_one_sided_labels_match_official;
- cross_remap takes the *last* related label the other side has -> test_cross_remap_rules;
- style-side remap allowed to a label only the style has -> test_cross_remap_rules;
- ``related`` ignored by the node -> test_related_is_a_relabelling.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodes.pis.convert import convert
from nodes.pis.nodes import PhotoWCT
from nodes.pis.photowct import cross_remap

from .test_pis import _close, _images, official_state_dict, ref_stylize


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """Seeded weights in the official layout, converted as a user would (as in test_pis)."""
    d = tmp_path_factory.mktemp("photowct_seg")
    sd = official_state_dict(5)
    torch.save(sd, d / "photo_wct.pth", _use_new_zipfile_serialization=False)
    convert(str(d / "photo_wct.pth"), str(d / "official.safetensors"))
    return sd, d / "official.safetensors"


def _node_with_events(**params):
    events = []
    node = PhotoWCT(params)
    node.ctx.emit = lambda ev, **kw: events.append((ev, kw))
    return node, events


def _t(seg: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(seg).long()[None]


def test_one_sided_labels_match_official(official):
    """Content labels 0 and 2 are missing from the style: they stay unstylised; the style's
    label 3 is missing from the content: ignored. Checked against the independent reference."""
    sd, dst = official
    content, style = _images(2)
    cseg = np.zeros((56, 60), np.uint8)
    cseg[:, 20:] = 1
    cseg[40:, :10] = 2
    sseg = np.full((44, 52), 3, np.uint8)
    sseg[10:, 15:] = 1
    ref = ref_stylize(sd, content, style, cseg, sseg)
    node, _ = _node_with_events(weights=str(dst))
    out = node(content=content, style=style, content_labels=_t(cseg), style_labels=_t(sseg))["image"]
    mean, p99 = _close(out, ref.clamp(0, 1))
    assert mean <= 2e-3 and p99 <= 3e-2, (mean, p99)
    glob = ref_stylize(sd, content, style).clamp(0, 1)
    kept = torch.from_numpy(cseg == 0)[None, None].expand_as(out)
    # the unstylised part really differs from a global transfer there (the test can tell)
    assert float((glob - ref.clamp(0, 1))[kept].abs().mean()) > 20 * mean


def test_no_usable_label_passes_content_through(official):
    sd, dst = official
    content, style = _images(3)
    cseg = np.zeros((56, 60), np.uint8)
    sseg = np.ones((44, 52), np.uint8)
    ref = ref_stylize(sd, content, style, cseg, sseg)  # no transfer: encode/decode only
    node, events = _node_with_events(weights=str(dst))
    out = node(content=content, style=style, content_labels=_t(cseg), style_labels=_t(sseg))["image"]
    mean, p99 = _close(out, ref.clamp(0, 1))
    assert mean <= 2e-3 and p99 <= 3e-2, (mean, p99)
    assert float((ref_stylize(sd, content, style).clamp(0, 1) - out).abs().mean()) > 20 * mean
    assert any(ev == "warning" and "nothing transferred" in kw["message"] for ev, kw in events)


def test_cross_remap_rules():
    c = np.array([[0, 0, 2, 2], [4, 4, 5, 5]])
    s = np.array([[0, 1, 1, 3], [3, 6, 6, 6]])
    related = {2: [9, 3, 1], 4: [7], 5: [1, 3], 6: [3, 0], 1: [0]}
    nc, ns = cross_remap(c, s, related)
    # content: 2 -> 3 (9 absent from the style, 3 is the first present), 4 unchanged (7 absent),
    # 5 -> 1 (first), 0 kept (the style has it)
    assert nc.tolist() == [[0, 0, 3, 3], [4, 4, 1, 1]]
    # style: 1 and 3 now exist in the content; 6 is style-only -> 3 (in both) not 0's turn
    assert ns.tolist() == [[0, 1, 1, 3], [3, 3, 3, 3]]
    # a style-only label may only go to a label both sides have
    nc2, ns2 = cross_remap(np.zeros((2, 2), int), np.array([[0, 8], [9, 9]]), {9: [8, 0]})
    assert ns2.tolist() == [[0, 8], [0, 0]] and nc2.tolist() == [[0, 0], [0, 0]]
    # inputs untouched, no relations = identity
    assert c.tolist() == [[0, 0, 2, 2], [4, 4, 5, 5]]
    same_c, same_s = cross_remap(c, s, {})
    assert (same_c == c).all() and (same_s == s).all()


def test_related_is_a_relabelling():
    """``related`` gives exactly the output of the relabelled maps, on both sides."""
    content, style = _images(4)
    cseg = np.zeros((56, 60), np.uint8)
    cseg[:, 30:] = 2  # the style has no 2: related to 1
    sseg = np.zeros((44, 52), np.uint8)
    sseg[22:, :] = 1
    sseg[:6, :6] = 7  # style-only 7: related to 0
    node, _ = _node_with_events(related={2: [1], 7: [0]})
    out = node(content=content, style=style, content_labels=_t(cseg), style_labels=_t(sseg))["image"]
    want = node(content=content, style=style, content_labels=_t(np.where(cseg == 2, 1, cseg)),
                style_labels=_t(np.where(sseg == 7, 0, sseg)))["image"]
    plain, _ = _node_with_events()
    official_path = plain(content=content, style=style, content_labels=_t(cseg), style_labels=_t(sseg))["image"]
    assert torch.allclose(out, want, atol=1e-6)
    assert float((out - official_path).abs().mean()) > 1e-3
