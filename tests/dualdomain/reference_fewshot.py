"""Independent reference of the cross-domain distance consistency loss, written from Ojha et al.
(CVPR 2021) eq. 3 and the official ``train.py`` (``rel_loss``), loop for loop, in float64:

    for each anchor sample i and every other sample j != i (in order):
        d[i, tmpc] = cos(flatten(F_l[i]), flatten(F_l[j]))     (nn.CosineSimilarity on 1 x N rows)
    y = softmax over the row (nn.Softmax(dim=1))
    nn.KLDivLoss()(log y_t, y_s) = mean over all B (B-1) entries of y_s (log y_s - log y_t)

``layer_of_row``: the official code reads row i at layer ``feat_ind[i]``; with None every layer
from ``first`` on is used and the per-layer losses are summed (the paper's sum over l).
No code is shared with ``nodes/dualdomain/fewshot.py``.
"""

from __future__ import annotations

import math

import torch


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    na = math.sqrt(float((a * a).sum()))
    nb = math.sqrt(float((b * b).sum()))
    return float((a * b).sum()) / max(na * nb, 1e-8)


def _softmax(row: list[float]) -> list[float]:
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def _rows(feat_of_row: list[torch.Tensor]) -> list[list[float]]:
    """feat_of_row[i]: the B x ... map row i is read from."""
    b = len(feat_of_row)
    out = []
    for i in range(b):
        row = [_cos(feat_of_row[i][i], feat_of_row[i][j]) for j in range(b) if j != i]
        out.append(_softmax(row))
    return out


def _kl_mean(ps: list[list[float]], pt: list[list[float]]) -> float:
    terms = [s * (math.log(s) - math.log(t)) for rs, rt in zip(ps, pt, strict=True)
             for s, t in zip(rs, rt, strict=True)]
    return sum(terms) / len(terms)


def cdc_reference(source: list[torch.Tensor], target: list[torch.Tensor], first: int = 1,
                  layer_of_row: list[int] | None = None) -> float:
    """The loss before ``kl_wt`` (see module doc); ``layer_of_row`` holds absolute layer indices."""
    b = source[0].shape[0]
    if layer_of_row is not None:
        return _kl_mean(_rows([source[layer_of_row[i]] for i in range(b)]),
                        _rows([target[layer_of_row[i]] for i in range(b)]))
    total = 0.0
    for layer in range(first, len(source)):
        total += _kl_mean(_rows([source[layer]] * b), _rows([target[layer]] * b))
    return total
