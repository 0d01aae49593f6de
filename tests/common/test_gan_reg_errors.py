"""loss.R1 and loss.PathLength called without the autograd graph they differentiate: a NodeError
naming the node and the port (never a bare torch RuntimeError, never a silent zero), and the
running mean's dtype. Written for the mutmut survivors of nodes/common/gan_reg.py (guards joined
with ``or`` instead of ``and``, ``allow_unused=False``, the node id or port left out of the error)."""

from __future__ import annotations

import pytest
import torch

from nodegraph.node import Context, NodeError
from nodes.common.gan_reg import PathLengthPenalty, R1Penalty


def _r1(node_id: str = "r1") -> R1Penalty:
    node = R1Penalty({"gamma": 10.0}, Context(node_id=node_id))
    node.ensure_setup()
    return node


def _pl(node_id: str = "pl") -> PathLengthPenalty:
    node = PathLengthPenalty({}, Context(node_id=node_id))
    node.ensure_setup()
    return node


def _check(err: pytest.ExceptionInfo, nid: str, port: str) -> None:
    assert err.value.node == nid and err.value.where == f"{nid}.inputs.{port}"
    assert str(err.value).startswith(f"{nid}: input '{port}'")


def test_r1_refuses_an_image_without_grad_even_if_the_logits_have_one() -> None:
    w = torch.ones(1, requires_grad=True)
    image = torch.rand(2, 3, 4, 4)  # no grad: D(x) cannot be differentiated with respect to it
    with pytest.raises(NodeError) as err:
        _r1().forward(real=(image.sum((1, 2, 3)) * w)[:, None], image=image)
    _check(err, "r1", "real")


def test_r1_refuses_logits_not_computed_from_the_image() -> None:
    image = torch.rand(2, 3, 4, 4, requires_grad=True)
    other = torch.rand(2, 3, 4, 4, requires_grad=True)
    with pytest.raises(NodeError) as err:  # allow_unused: no torch RuntimeError, our message
        _r1().forward(real=other.sum((1, 2, 3))[:, None], image=image)
    _check(err, "r1", "real")


def test_r1_refuses_logits_without_grad() -> None:
    image = torch.rand(2, 3, 4, 4, requires_grad=True)
    with pytest.raises(NodeError) as err:
        _r1("d_r1").forward(real=image.detach().sum((1, 2, 3))[:, None], image=image)
    _check(err, "d_r1", "real")


def test_r1_standalone_names_its_type() -> None:
    node = R1Penalty({"gamma": 1.0})
    node.ensure_setup()
    with pytest.raises(NodeError) as err:
        node.forward(real=torch.zeros(1, 1), image=torch.zeros(1, 3, 2, 2))
    assert err.value.where == "loss.R1.inputs.real" and str(err.value).startswith("loss.R1:")


def test_path_length_refuses_codes_without_grad() -> None:
    w = torch.rand(2, 3, 5)
    k = torch.ones(1, requires_grad=True)
    raw = (w.sum(-1).sum(-1)[:, None, None, None] * k).expand(2, 3, 4, 4)
    with pytest.raises(NodeError) as err:
        _pl().forward(raw=raw, wplus=w)
    _check(err, "pl", "raw")


def test_path_length_refuses_an_image_not_made_from_the_codes() -> None:
    w = torch.rand(2, 3, 5, requires_grad=True)
    other = torch.rand(2, 3, 4, 4, requires_grad=True)
    with pytest.raises(NodeError) as err:
        _pl("g_pl").forward(raw=other * 2, wplus=w)
    _check(err, "g_pl", "raw")


def test_path_length_running_mean_is_a_float32_scalar_on_the_cpu() -> None:
    node = _pl()
    st = node.train_state()["mean_length"]
    assert st.dtype == torch.float32 and st.shape == () and float(st) == 0.0
    w = torch.rand(2, 3, 5, dtype=torch.float64, requires_grad=True)
    node.forward(raw=(w.sum(-1)[:, :, None, None] * torch.ones(1, 1, 4, 4, dtype=torch.float64)), wplus=w)
    st = node.train_state()["mean_length"]
    assert st.dtype == torch.float32 and st.device.type == "cpu" and float(st) > 0
    fresh = PathLengthPenalty()
    assert fresh.train_state() == {}  # nothing to checkpoint before the node ever ran
