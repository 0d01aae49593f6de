"""What every converter of an official checkpoint does the same way: read, unwrap, strip, complain.

A converter (``nodes/<family>/convert.py``) maps one official layout onto our network; the steps
before that mapping are shared and live here, so each family keeps only its key map:

- ``read_checkpoint``: ``torch.load(weights_only=True)`` (tensors and containers only, no pickled
  code runs; ``safe_globals`` admits a reviewed allow-list such as ``argparse.Namespace``). A file
  it refuses is read again with every foreign class replaced by an inert stand-in
  (:class:`Inert`, allow-listed under that class's name): still no foreign code runs, the tensors
  come back, and what the file holds can be said -- a whole pickled module, a training checkpoint
  with options beside the weights;
- ``state_dict_of``: the tensors of a plain state_dict or of a training checkpoint that keeps them
  under a known key (``state_dict``, ``model``, ``netG``, ``g_ema``, ... -- ``WRAPPER_KEYS``), with
  a DataParallel ``module.`` prefix removed; a pickled module or unknown layout is described;
- ``ConversionError``: the one error type the ``nodegraph convert`` command reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

# Keys under which training scripts keep the weights ({"state_dict": sd, "epoch": ...}), in the order tried.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "net", "netG", "generator",
                "G", "g_ema", "params_ema", "params", "ema", "module", "weights")


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
        raise ConversionError(f"{src}: {'a folder, not a file' if path.is_dir() else 'file not found'}")
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything that is not plain tensors/containers
        foreign = _foreign_globals(path)
        if not foreign:
            raise ConversionError(
                f"{src}: not a PyTorch checkpoint nodegraph can read (torch.load found {type(e).__name__}); "
                "expected a file written by torch.save(model.state_dict(), ...)") from None
    return _load_inert(path, foreign)


class Inert:
    """Stands in for a class a checkpoint names (a module, an options Namespace, a numpy scalar):
    built from the pickle's data without importing or running that class. ``qualname`` says which."""

    qualname = "?"

    def __new__(cls, *args: Any, **kw: Any) -> Inert:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


# Globals torch's weights_only loader admits itself (tensor rebuilding, storages, containers).
_TORCH_OWN = ("torch._utils.", "torch.storage.", "torch._tensor.", "collections.OrderedDict", "__builtin__.",
              "builtins.", "_codecs.encode", "torch.Size", "torch.device")


def _foreign_globals(path: Path) -> list[str]:
    """Names of the classes / functions the checkpoint's pickle refers to beyond torch's own
    (read from the opcodes with ``pickletools``, never resolved)."""
    import pickletools
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    except (zipfile.BadZipFile, StopIteration, OSError, KeyError):
        return []
    found: set[str] = set()
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL":
                found.add(str(arg).replace(" ", "."))
            elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(str(arg))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.add(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # noqa: BLE001 - a damaged pickle: use what was read so far
        pass
    return sorted(n for n in found if not n.startswith(_TORCH_OWN)
                  and not (n.startswith("torch.") and n.endswith("Storage")))


def _load_inert(path: Path, foreign: list[str]) -> Any:
    """The checkpoint with each foreign class replaced by an :class:`Inert` of its name (a
    restricted allow-list: torch still refuses anything else, and no foreign code runs)."""
    stand_ins = [(type(n.rpartition(".")[2], (Inert,), {"qualname": n}), n) for n in foreign]
    try:
        with torch.serialization.safe_globals(stand_ins):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise ConversionError(f"{path}: a pickle referring to {', '.join(foreign[:4])} that cannot be read "
                              f"without running its code ({type(e).__name__}); save model.state_dict() "
                              "where that code lives and convert that file") from None


def strip_module(sd: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of ``sd`` with a leading DataParallel ``module.`` removed from each key."""
    return {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


def state_dict_of(obj: Any, src: str | Path = "checkpoint") -> dict[str, torch.Tensor]:
    """The state_dict in ``obj``: plain, or under a ``state_dict`` / ``model`` key; ``module.`` stripped.

    Raises:
        ConversionError: ``obj`` is not a dict of tensors (naming what it is instead).
    """
    if isinstance(obj, Inert):
        raise ConversionError(
            f"{src} holds a whole pickled {obj.qualname} object (saved with torch.save(model)), not a "
            "state_dict; nodegraph never runs a checkpoint's code, so it cannot rebuild that object. "
            "Where its code lives, load it and save the weights alone -- torch.save(model.state_dict(), "
            "'weights.pth') -- then convert that file")
    if isinstance(obj, dict) and not _mostly_tensors(obj):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and _mostly_tensors(inner):
                obj = inner
                break
    if not isinstance(obj, dict):
        raise ConversionError(f"{src}: expected a state_dict, got {type(obj).__name__}")
    sd = strip_module(obj)
    if not sd:
        nested = [str(k) for k, v in obj.items() if isinstance(v, dict) and _mostly_tensors(v)]
        what = ", ".join(f"{k!r} ({_describe(v)})" for k, v in list(obj.items())[:8])
        hint = (f"the weights seem to be under {', '.join(map(repr, nested))}, a key converters do not "
                "know; save that entry alone as a state_dict" if nested else "no entry holds tensors")
        raise ConversionError(f"{src} is a dict of {len(obj)} entries ({what}) with no state_dict at the top "
                              f"level or under {', '.join(WRAPPER_KEYS[:5])}, ...: {hint}")
    return sd


def _mostly_tensors(d: dict[Any, Any]) -> bool:
    return bool(d) and sum(isinstance(v, torch.Tensor) for v in d.values()) * 2 >= len(d)


def _describe(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor {tuple(v.shape)}"
    if isinstance(v, dict):
        return f"dict of {len(v)}"
    return v.qualname if isinstance(v, Inert) else type(v).__name__


def read_state_dict(src: str | Path) -> dict[str, torch.Tensor]:
    """``state_dict_of(read_checkpoint(src))``: the common case of a plain or wrapped state_dict."""
    return state_dict_of(read_checkpoint(src), src)
