"""nodegraph.train.optim.build_optimizers on hand-made nodes: which parameters each optimizer
gets, shared optimizers, lr_mult and the lazy correction, and the error for nothing to train.

Written for the mutmut survivors of nodegraph/train/optim.py (39/55 killed before): ``continue``
-> ``break`` past a sharing objective; the requires_grad filter or the ``seen`` set dropped (a
parameter in two groups); ``lr * lr_mult`` -> ``lr / lr_mult`` or the mult looked up for the
wrong node; the error message / node left out."""

from __future__ import annotations

import pytest
import torch

from nodegraph.node import Node, NodeError
from nodegraph.train.optim import build_optimizers
from nodegraph.train.spec import TrainSpec


class _Net(Node):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net


def _spec(objectives: dict) -> TrainSpec:
    return TrainSpec(dataset="data", objectives=objectives)


def _ids(opt: torch.optim.Optimizer) -> list[list[int]]:
    return [[id(p) for p in g["params"]] for g in opt.param_groups]


def test_groups_skip_frozen_and_shared_parameters_and_scale_lr() -> None:
    a, b, t = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    b.weight = t.weight = a.weight  # one tensor owned by three nodes: it may sit in one group only
    a.bias.requires_grad_(False)
    nodes = {"a": _Net(a), "b": _Net(b), "t": _Net(t), "d": _Net(torch.nn.Linear(2, 1))}
    spec = _spec({
        "G": {"losses": {"x.loss": 1}, "updates": ["a", "b", "t"], "lr_mult": {"b": 0.5},
              "optimizer": {"lr": 0.01, "lazy_every": 4}},
        "Greg": {"losses": {"y.loss": 4}, "updates": ["a"], "optimizer": "G", "every": 4},
        "D": {"losses": {"z.loss": 1}, "updates": ["d"], "optimizer": {"lr": 0.1}},
    })
    optims, params = build_optimizers(spec, nodes)
    assert set(optims) == {"G", "D"}  # built past the sharing objective
    g = optims["G"]
    assert _ids(g) == [[id(a.weight)], [id(b.bias)], [id(t.bias)]]  # frozen bias out, tied weight once
    c = 4 / 5
    assert g.param_groups[0]["lr"] == pytest.approx(0.01 * c)
    assert g.param_groups[1]["lr"] == pytest.approx(0.01 * c * 0.5)  # lr_mult of node b only
    assert g.param_groups[0]["betas"] == pytest.approx((0.5 ** c, 0.999 ** c))
    assert [id(p) for p in params["Greg"]] == [id(a.weight)]
    assert [id(p) for p in params["D"]] == [id(p) for p in nodes["d"].net.parameters()]


def test_nothing_to_train_names_the_objective_and_its_nodes() -> None:
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    spec = _spec({"E": {"losses": {"x.loss": 1}, "updates": ["enc", "head"]}})
    with pytest.raises(NodeError) as err:
        build_optimizers(spec, {"enc": _Net(frozen), "head": _Net(torch.nn.Identity())})
    assert err.value.node == "E"
    assert str(err.value) == ("train.objectives.E: the nodes it updates (enc, head) have no parameters "
                              "that require grad")
