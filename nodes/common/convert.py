"""What every converter of an official checkpoint does the same way: read, unwrap, strip, complain.

A converter (``nodes/<family>/convert.py``) maps one official layout onto our network; the steps
before that mapping are shared and live here, so each family keeps only its key map:

- ``read_checkpoint``: ``torch.load(weights_only=True)`` (tensors and containers only, no pickled
  code runs; ``safe_globals`` admits a reviewed allow-list such as ``argparse.Namespace``), with a
  one-line reason when the file is missing, not a checkpoint, or a pickled module;
- ``state_dict_of``: the tensors of a plain state_dict or of a ``{"state_dict": ...}`` /
  ``{"model": ...}`` wrapper, with a DataParallel ``module.`` prefix removed;
- ``ConversionError``: the one error type the ``nodegraph convert`` command reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

WRAPPER_KEYS = ("state_dict", "model")  # training scripts' {"state_dict": sd, "epoch": ...} wrappers


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message says which file and why."""


def read_checkpoint(src: str | Path, *, safe_globals: Iterable[Any] = ()) -> Any:
    """``torch.load(src, weights_only=True)`` on the CPU, with the reason in a ConversionError.

    Raises:
        ConversionError: the file is missing, or holds something other than tensors and plain
            containers (a pickled ``nn.Module``, custom classes): ``weights_only`` refuses to run
            its code, and the message says to save ``model.state_dict()`` instead.
    """
    path = Path(src)
    if not path.is_file():
        raise ConversionError(f"{src}: file not found")
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything that is not plain tensors/containers
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConversionError(
            f"{src}: not a plain PyTorch state_dict ({type(e).__name__}: {first}). Only tensors and "
            "containers are read (torch.load(weights_only=True)); if the file is a whole pickled "
            "model, load it where its code lives and save model.state_dict() instead") from None


def strip_module(sd: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of ``sd`` with a leading DataParallel ``module.`` removed from each key."""
    return {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


def state_dict_of(obj: Any, src: str | Path = "checkpoint") -> dict[str, torch.Tensor]:
    """The state_dict in ``obj``: plain, or under a ``state_dict`` / ``model`` key; ``module.`` stripped.

    Raises:
        ConversionError: ``obj`` is not a dict of tensors (naming what it is instead).
    """
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict):
        raise ConversionError(f"{src}: expected a state_dict, got {type(obj).__name__}")
    sd = strip_module(obj)
    if not sd:
        keys = ", ".join(map(str, list(obj)[:8]))
        raise ConversionError(f"{src}: holds no tensors at the top level or under "
                              f"{' / '.join(WRAPPER_KEYS)} (keys: {keys})")
    return sd


def read_state_dict(src: str | Path) -> dict[str, torch.Tensor]:
    """``state_dict_of(read_checkpoint(src))``: the common case of a plain or wrapped state_dict."""
    return state_dict_of(read_checkpoint(src), src)
