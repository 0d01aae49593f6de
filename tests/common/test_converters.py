"""Every converter reads the checkpoints users actually hold, and refuses what does not fit.

Official checkpoints come three ways: the plain state_dict, a DataParallel one (every key
prefixed ``module.``), or wrapped as ``{"state_dict": ..., "epoch": ...}``. All three must
convert to the same tensors; a file whose layout is wrong (a mis-shaped or missing tensor) must
be refused with an error naming the key, never written out. Checkpoints are written here in the
official key layout with seeded random weights (SPADE: the official generator layout for the
``landscape`` preset at ngf 8, so each conversion takes a fraction of a second; the width is read
off the keys).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.docs import fixtures


def _spade_small(path: Path) -> None:
    from nodes.spade.net import PRESETS
    from tests.spade.reference import RefGenerator

    torch.manual_seed(0)
    torch.save(RefGenerator(PRESETS["landscape"].semantic_nc, 8, "normal", 64).state_dict(), path)


def _convert(name: str) -> Callable[..., object]:
    if name == "spade":
        from nodes.spade.convert import convert

        return lambda src, dst: convert(src, dst, preset="landscape")
    if name == "photowct":
        from nodes.pis.convert import convert
    elif name == "bisenet":
        from nodes.face.convert import convert
    else:
        from nodes.common.vgg_convert import convert
    return convert


CASES = {
    "photowct": fixtures.photowct,
    "spade": _spade_small,
    "bisenet": fixtures.bisenet,
    "vgg19": fixtures.vgg19,
}


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> dict[str, tuple[OrderedDict, dict[str, torch.Tensor]]]:
    """name -> (the official state_dict, what converting the plain file gives)."""
    out = {}
    d = tmp_path_factory.mktemp("official")
    for name, write in CASES.items():
        src = d / f"{name}.pth"
        write(src)
        sd = torch.load(src, weights_only=True)
        _convert(name)(str(src), str(d / f"{name}.safetensors"))
        out[name] = (sd, load_file(d / f"{name}.safetensors"))
    return out


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", CASES)
def test_dataparallel_and_wrapped_checkpoints_convert_like_the_plain_one(name, official, tmp_path):
    """Mutants: the ``module.`` prefix no longer stripped; ``{"state_dict": ...}`` no longer
    unwrapped (either one makes the converter refuse the file or write different tensors)."""
    sd, plain = official[name]
    assert plain, "the plain file converted to nothing"
    variants = {
        "dataparallel": OrderedDict((f"module.{k}", v) for k, v in sd.items()),
        "wrapped": {"state_dict": sd, "epoch": 7},
    }
    for kind, obj in variants.items():
        src = tmp_path / f"{kind}.pth"
        torch.save(obj, src)
        dst = tmp_path / f"{kind}.safetensors"
        _convert(name)(str(src), str(dst))
        assert _same(load_file(dst), plain), f"{name}: the {kind} checkpoint converts differently"


def _first_kernel(sd: OrderedDict) -> str:
    return next(k for k, v in sd.items() if v.dim() == 4)


@pytest.mark.parametrize("name", CASES)
def test_mis_shaped_or_missing_tensor_is_refused_by_name(name, official, tmp_path):
    """Mutant: shapes no longer checked (a 5x5 first conv was written out); missing keys
    accepted. The error names the key and nothing is written."""
    sd, _ = official[name]
    key = _first_kernel(sd)
    bad = OrderedDict(sd)
    co, ci, kh, kw = bad[key].shape
    bad[key] = torch.zeros(co, ci, kh + 2, kw + 2)
    src, dst = tmp_path / "bad.pth", tmp_path / "bad.safetensors"
    torch.save(bad, src)
    with pytest.raises(ValueError, match=key.replace(".", r"\.") + r".*\b" + f"{kh + 2}, {kw + 2}"):
        _convert(name)(str(src), str(dst))
    assert not dst.exists()
    missing = OrderedDict((k, v) for k, v in sd.items() if k != key)
    torch.save(missing, src)
    with pytest.raises(ValueError, match=r"(?i)missing.*" + key.replace(".", r"\.")):
        _convert(name)(str(src), str(dst))
    assert not dst.exists()


@pytest.mark.parametrize("name", CASES)
def test_pickled_code_is_not_run(name, official, tmp_path):
    """A checkpoint that also holds a pickled object whose unpickling would run code: the code
    never runs (the object is read as an inert stand-in, nodes.common.convert.Inert) and the
    weights under ``state_dict`` are converted (issue 19, BR-2-21).
    Mutant: ``torch.load(..., weights_only=False)`` (``_record`` runs)."""
    src = tmp_path / "pickled.pth"
    RAN.clear()
    torch.save({"state_dict": official[name][0], "optimizer": _Unsafe()}, src)
    _convert(name)(str(src), str(tmp_path / "x.safetensors"))
    assert RAN == [] and (tmp_path / "x.safetensors").exists()


RAN: list[str] = []


def _record(what: str) -> None:
    RAN.append(what)


class _Unsafe:
    def __reduce__(self):
        return (_record, ("unpickling ran code",))
