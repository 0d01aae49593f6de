"""Node-type registry, filled through the entry-point group ``nodegraph.nodes``.

Each entry point names a module; importing it registers the node classes it defines with
``@register``. The entry point's *name* is the family prefix it provides (``spade`` for
``spade.Generator``) so a run imports only the families its graph uses; a third-party package
adds node types by declaring its own entry point in its ``pyproject.toml``::

    [project.entry-points."nodegraph.nodes"]
    mypkg = "mypkg.nodes"

Converters for official checkpoints register the same way under ``nodegraph.converters``
(name -> ``module:function``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import TypeVar

from .node import Node

N = TypeVar("N", bound=type[Node])

NODE_GROUP = "nodegraph.nodes"
CONVERTER_GROUP = "nodegraph.converters"

_TYPES: dict[str, type[Node]] = {}
_LOADED_EPS: set[str] = set()
_FAILED_EPS: dict[str, str] = {}


def register(type_name: str) -> Callable[[N], N]:
    """Class decorator: ``@register("image.Resize")``."""

    def deco(cls: N) -> N:
        if "." not in type_name:
            raise ValueError(f"node type names are dotted 'family.Name', got {type_name!r}")
        old = _TYPES.get(type_name)
        if old is not None and old is not cls and (old.__module__, old.__qualname__) != (
            cls.__module__, cls.__qualname__
        ):
            raise ValueError(f"node type {type_name!r} registered twice ({old} and {cls})")
        cls.type_name = type_name
        _TYPES[type_name] = cls
        return cls

    return deco


def _eps(group: str) -> list[EntryPoint]:
    return list(entry_points(group=group))


def _load_ep(ep: EntryPoint) -> None:
    key = f"{ep.name}={ep.value}"
    if key in _LOADED_EPS or key in _FAILED_EPS:
        return
    try:
        ep.load()
        _LOADED_EPS.add(key)
    except Exception as e:  # a broken plugin must not break every other family
        _FAILED_EPS[key] = f"{type(e).__name__}: {e}"


def load_family(family: str) -> None:
    found = False
    for ep in _eps(NODE_GROUP):
        if ep.name == family or ep.name.startswith(family + "."):
            _load_ep(ep)
            found = True
    if not found:
        load_all()


def load_all() -> None:
    for ep in _eps(NODE_GROUP):
        _load_ep(ep)


def get(type_name: str) -> type[Node]:
    """The class registered as ``type_name`` (importing its family on demand)."""
    if type_name not in _TYPES:
        load_family(type_name.split(".", 1)[0])
    try:
        return _TYPES[type_name]
    except KeyError:
        raise KeyError(unknown_type_message(type_name)) from None


def unknown_type_message(type_name: str) -> str:
    import difflib

    load_all()
    close = difflib.get_close_matches(type_name, list(_TYPES), n=3)
    msg = f"unknown node type {type_name!r}"
    if close:
        msg += f" (did you mean {', '.join(close)}?)"
    family = type_name.split(".")[0]
    broken = [f"{k} ({v})" for k, v in _FAILED_EPS.items()
              if k.split("=")[0] == family or k.startswith(family + ".")]
    if broken:
        msg += f"; the plugin for this family failed to import: {'; '.join(broken)}"
    return msg


def all_types() -> dict[str, type[Node]]:
    load_all()
    return dict(sorted(_TYPES.items()))


def failed_plugins() -> dict[str, str]:
    return dict(_FAILED_EPS)


def converters() -> dict[str, Callable[..., object]]:
    """name -> converter function (``fn(src, dst, **options)``)."""
    out: dict[str, Callable[..., object]] = {}
    for ep in _eps(CONVERTER_GROUP):
        out[ep.name] = ep  # loaded lazily by the caller
    return out


def load_converter(name: str) -> Callable[..., object]:
    for ep in _eps(CONVERTER_GROUP):
        if ep.name == name:
            return ep.load()
    known = ", ".join(sorted(e.name for e in _eps(CONVERTER_GROUP))) or "none installed"
    raise KeyError(f"no converter named {name!r} (available: {known})")


def _reset_for_tests() -> None:  # pragma: no cover - test helper
    _LOADED_EPS.clear()
    _FAILED_EPS.clear()
    for mod in [m for m in sys.modules if m.startswith("nodes.")]:
        importlib.reload(sys.modules[mod])
