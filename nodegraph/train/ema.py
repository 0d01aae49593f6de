"""Exponential moving averages of trained weights (the ``train.ema`` entry).

For each listed node the engine keeps a shadow copy of its network's parameters and buffers and,
after every step, moves it towards the live weights::

    theta_ema <- beta * theta_ema + (1 - beta) * theta      (floating-point parameters)
    buffer_ema <- buffer                                     (buffers are copied)

``beta`` is given per step (``decay``) or as a half-life in training images (``half_life``):
``beta = 0.5 ** (B / half_life)`` for a global batch of B images, so a step's weight halves after
``half_life`` images whatever the batch (StyleGAN2, Karras et al. 2020: 10 kimg; rosinality
``train.py``: ``accum = 0.5 ** (32 / (10 * 1000))`` for its batch of 32); with ``rampup`` r the
half-life is at most r x the images seen so far (StyleGAN2-ADA). The average starts as a copy
of the initial weights; beta is a pure function of the step. The average is what sample grids
show and what ``export`` writes, and it is saved in every checkpoint (``ema/<node>/<key>``), so
a resumed run continues it bit for bit. Nothing here knows what the network is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .spec import EmaSpec


class EMA:
    """Shadow weights of some trained modules (node id -> module), updated after each step."""

    def __init__(self, modules: dict[str, torch.nn.Module], specs: dict[str, EmaSpec], batch_size: int) -> None:
        self.modules, self.specs, self.batch_size = modules, specs, batch_size
        self.beta = {nid: specs[nid].beta(batch_size) for nid in modules}
        """The decay without ramp-up (the one recorded in checkpoints and exports)."""
        self.shadow: dict[str, dict[str, torch.Tensor]] = {}
        # (shadow, live) pairs: lerped parameters and copied buffers; a tensor shared under two
        # names (tied weights) is averaged once and both names point at one shadow tensor
        self._params: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self._buffers: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        for nid, mod in modules.items():
            param_ids = {id(p) for p in mod.parameters()}
            by_id: dict[int, torch.Tensor] = {}
            sd: dict[str, torch.Tensor] = {}
            sp, lp, sb, lb = [], [], [], []
            for k, v in mod.state_dict(keep_vars=True).items():
                if id(v) in by_id:
                    sd[k] = by_id[id(v)]
                    continue
                sd[k] = by_id[id(v)] = v.detach().clone()
                if id(v) in param_ids and v.is_floating_point():
                    sp.append(sd[k])
                    lp.append(v.detach())
                else:
                    sb.append(sd[k])
                    lb.append(v.detach())
            self.shadow[nid] = sd
            self._params[nid], self._buffers[nid] = (sp, lp), (sb, lb)

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Average in the weights after step ``step`` (0-based; call after the optimizers stepped)."""
        for nid, (shadow, live) in self._params.items():
            if shadow:
                torch._foreach_lerp_(shadow, live, 1.0 - self.specs[nid].beta(self.batch_size, step))
            for s, v in zip(*self._buffers[nid], strict=True):
                s.copy_(v)

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors for the checkpoint: ``ema/<node>/<key>``."""
        return {f"ema/{nid}/{k}": v for nid, sd in self.shadow.items() for k, v in sd.items()}

    @torch.no_grad()
    def load(self, tensors: dict[str, torch.Tensor]) -> list[str]:
        """Restore from checkpoint tensors. Returns the nodes the checkpoint holds no matching
        average for; those restart from their current (restored) weights."""
        fresh = []
        for nid, sd in self.shadow.items():
            prefix = f"ema/{nid}/"
            got = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            ok = set(got) == set(sd) and all(got[k].shape == v.shape for k, v in sd.items())
            source = got if ok else self.modules[nid].state_dict()
            for k, v in sd.items():
                v.copy_(source[k])
            if not ok:
                fresh.append(nid)
        return fresh

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the block the modules hold the averaged weights; the live ones come back after."""
        saved = {nid: {k: v.clone() for k, v in mod.state_dict().items()} for nid, mod in self.modules.items()}
        try:
            self._copy_into(self.shadow)
            yield
        finally:
            self._copy_into(saved)

    @torch.no_grad()
    def _copy_into(self, source: dict[str, dict[str, torch.Tensor]]) -> None:
        for nid, mod in self.modules.items():
            for k, v in mod.state_dict().items():
                v.copy_(source[nid][k])
