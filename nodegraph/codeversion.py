"""What code computes a node: a digest of its source, for the cache key.

A hand-kept ``version`` goes stale the moment someone forgets to bump it; a key that covers the
code cannot. ``code_digest(cls)`` hashes the syntax tree (comments, docstrings and formatting
left out, so only a change in behaviour can count) of

- the module that defines the node class and the modules of its base classes, and
- every module they import from the same top-level package (``nodes.spade.nodes`` ->
  ``nodes.spade.net`` -> ``nodes.common.layers`` ...), transitively,

together with nodegraph's own version. The node's ``version`` stays in the key beside it for
deliberate invalidation (a change in data the code reads, say). Modules of other packages
(torch, numpy, the engine) are not followed: their versions change rarely and together.
Idea from Hamilton's ``hash_source_code`` (graph_types.py), which hashes a function's source
with docs and comments stripped.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

_FILE_DIGESTS: dict[tuple[str, int, int], tuple[str, tuple[str, ...]]] = {}
_CLASS_DIGESTS: dict[type, str] = {}


def engine_version() -> str:
    from . import __version__

    return __version__


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]


def _imported(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Absolute names of the modules ``module`` imports (candidates; not checked to exist)."""
    package = module if is_package else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.append(base)
            names += [f"{base}.{a.name}" for a in node.names]  # ``from pkg import submodule``
    return names


def _file_of(module: str) -> tuple[str, bool] | None:
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None) if mod is not None else None
    if path is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError, AttributeError):
            return None
        if spec is None or not spec.origin or not spec.has_location:
            return None
        path = spec.origin
    if not path.endswith(".py"):
        return None
    return path, Path(path).name == "__init__.py"


def module_digest(module: str) -> tuple[str, tuple[str, ...]] | None:
    """(sha256 of the docstring-free AST, same-package modules it imports) for one module file,
    memoised on (path, size, mtime); None for a module without Python source."""
    found = _file_of(module)
    if found is None:
        return None
    path, is_package = found
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    got = _FILE_DIGESTS.get(key)
    if got is None:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
        _strip_docstrings(tree)
        digest = hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()
        top = module.split(".")[0]
        deps = tuple(sorted({n for n in _imported(tree, module, is_package)
                             if n.split(".")[0] == top and n != module}))
        got = _FILE_DIGESTS[key] = (digest, deps)
    return got


def module_closure(roots: list[str]) -> dict[str, str]:
    """module name -> digest for ``roots`` and every same-package module they import."""
    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        got = module_digest(name)
        if got is None:
            seen[name] = ""
            continue
        seen[name] = got[0]
        todo += [d for d in got[1] if d not in seen]
    return {k: v for k, v in seen.items() if v}


def code_digest(cls: type) -> str:
    """Digest of the code that computes node class ``cls`` (see module doc). Memoised per class
    for the life of the process: a module edited while it runs still runs its old code."""
    got = _CLASS_DIGESTS.get(cls)
    if got is None:
        roots = sorted({c.__module__ for c in cls.__mro__
                        if c.__module__.split(".")[0] == cls.__module__.split(".")[0]})
        closure = module_closure(roots)
        h = hashlib.sha256(f"nodegraph {engine_version()}\n".encode())
        for name in sorted(closure):
            h.update(f"{name} {closure[name]}\n".encode())
        got = _CLASS_DIGESTS[cls] = h.hexdigest()
    return got
