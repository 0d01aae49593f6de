"""The optimizers of a train section: one per objective that owns one, shared by name.

An objective names either its own optimizer or another objective whose optimizer it steps
too (``"optimizer": "D"``). Lazy regularisation needs the sharing: StyleGAN2's R1 step every 16
steps moves the discriminator with the *same* Adam as its main loss, whose second-moment
estimate then sets the size of both kinds of step (a separate Adam would normalise the penalty's
gradient on its own and so erase gamma). One param group per updated node (``lr_mult``); the
lazy correction ``lr * c`` (``OptimizerSpec.lazy_every``) is folded into each group's lr.
"""

from __future__ import annotations

import torch

from ..node import Node, NodeError
from .spec import TrainSpec


def owner(spec: TrainSpec, name: str) -> str:
    """The objective whose optimizer ``name`` steps (itself unless it names another)."""
    o = spec.objectives[name].optimizer
    return o if isinstance(o, str) else name


def build_optimizers(spec: TrainSpec, nodes: dict[str, Node]
                     ) -> tuple[dict[str, torch.optim.Optimizer], dict[str, list[torch.nn.Parameter]]]:
    """(owner objective -> optimizer, objective -> the parameters its backward fills)."""
    optims = {}
    for name, obj in spec.objectives.items():
        if isinstance(obj.optimizer, str):
            continue
        groups, seen = [], set()
        for nid in obj.updates:
            mod = nodes[nid].module()
            assert mod is not None
            ps = [p for p in mod.parameters() if p.requires_grad and id(p) not in seen]
            seen |= {id(p) for p in ps}
            if ps:
                lr = obj.optimizer.lr * obj.optimizer.correction() * obj.lr_mult.get(nid, 1.0)
                groups.append({"params": ps, "lr": lr, "initial_lr": lr, "node": nid})
        if not groups:
            raise NodeError(f"train.objectives.{name}: the nodes it updates ({', '.join(obj.updates)}) "
                            "have no parameters that require grad", name)
        optims[name] = obj.optimizer.build(groups)
    params = {}
    for name, obj in spec.objectives.items():
        groups = optims[owner(spec, name)].param_groups
        params[name] = [p for g in groups if g["node"] in obj.updates for p in g["params"]]
    return optims, params
