"""What ``nodegraph convert`` says about a checkpoint it cannot use, and the wrapped checkpoints it
can (issue 19 §2, BR-2-21): one paragraph naming what the file holds and what to do, for every
converter; the weights of a training checkpoint found under a known key. Nothing is unpickled:
foreign classes become inert stand-ins."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nodegraph.cli import main
from nodes.common.convert import ConversionError, read_state_dict

RAN: list[str] = []


class Sneaky(torch.nn.Module):
    """A module whose unpickling would run code, if it were ever unpickled for real."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 1)

    def __setstate__(self, state: dict) -> None:
        RAN.append("setstate")
        super().__setstate__(state)


def test_a_pickled_module_is_described_in_one_paragraph(tmp_path: Path) -> None:
    """``torch.save(model)``: refused without running the module's code, with its class and the fix,
    in one paragraph through every converter (photowct, spade, bisenet went through the internal-
    error path with torch's own six lines of advice)."""
    torch.save(Sneaky(), tmp_path / "whole.pth")
    with pytest.raises(ConversionError, match=r"whole pickled .*Sneaky object.*model\.state_dict\(\)"):
        read_state_dict(tmp_path / "whole.pth")
    assert RAN == []
    for kind in ("photowct", "spade", "bisenet", "vgg19"):
        res = CliRunner().invoke(main, ["convert", kind, str(tmp_path / "whole.pth"), str(tmp_path / "o.safetensors")])
        assert res.exit_code == 1, (kind, res.output)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Sneaky" in lines[0], (kind, res.output)
        assert "weights_only=False" not in res.output


def test_training_checkpoints_give_their_weights(tmp_path: Path) -> None:
    """{"epoch", "opt": Namespace, "netG": state_dict, numpy scalar}: the weights under netG, found
    and used (the Namespace and numpy scalar are read as inert stand-ins); ``module.`` stripped."""
    sd = {"module.conv.weight": torch.ones(2, 1, 1, 1), "module.conv.bias": torch.zeros(2)}
    torch.save({"epoch": 3, "opt": argparse.Namespace(lr=1e-3), "netG": sd, "best": np.float64(1.5)},
               tmp_path / "ckpt.pth")
    got = read_state_dict(tmp_path / "ckpt.pth")
    assert set(got) == {"conv.weight", "conv.bias"} and torch.equal(got["conv.weight"], sd["module.conv.weight"])
    torch.save({"g_ema": sd, "d": {"x": torch.zeros(1)}, "args": argparse.Namespace(size=8)}, tmp_path / "sg.pth")
    assert set(read_state_dict(tmp_path / "sg.pth")) == {"conv.weight", "conv.bias"}


def test_unknown_layouts_say_where_the_tensors_are(tmp_path: Path) -> None:
    torch.save({"epoch": 3, "mystery": {"a": torch.zeros(1), "b": torch.zeros(2)}}, tmp_path / "m.pth")
    with pytest.raises(ConversionError, match="the weights seem to be under 'mystery'"):
        read_state_dict(tmp_path / "m.pth")
    (tmp_path / "notes.pth").write_text("hello")
    with pytest.raises(ConversionError, match="not a PyTorch checkpoint"):
        read_state_dict(tmp_path / "notes.pth")
