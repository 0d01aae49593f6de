"""Autograd helpers for nodes that optimise a code through frozen networks (inversion.Optimize,
dualdomain.LatentOptimize): networks built or loaded by other nodes are made usable by autograd
and frozen for the duration of an optimisation, so backward builds gradients for the code only.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn


def autograd_ready(m: nn.Module | None) -> nn.Module | None:
    """``m`` itself, or a deep copy made outside inference mode when any of its parameters or
    buffers was created under ``torch.inference_mode`` (the engine runs inference graphs so, and
    autograd refuses such tensors: "Inference tensors cannot be saved for backward"). None -> None."""
    if m is None or not any(t.is_inference() for t in itertools.chain(m.parameters(), m.buffers())):
        return m
    with torch.inference_mode(False):
        return copy.deepcopy(m)


@contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Eval mode and ``requires_grad=False`` for every parameter of ``modules`` (None skipped);
    each module's mode and flags restored after, also on error."""
    mods = [m for m in modules if m is not None]
    saved = [(m, m.training, [(p, p.requires_grad) for p in m.parameters()]) for m in mods]
    try:
        for m in mods:
            m.eval().requires_grad_(False)
        yield
    finally:
        for m, training, flags in saved:
            m.train(training)
            for p, flag in flags:
                p.requires_grad_(flag)
