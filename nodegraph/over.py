"""Item sources for ``nodegraph run G --over NODE.PARAM=SOURCE`` and per-item output names.

A SOURCE is

- a folder: every regular, non-hidden file in it, sorted by name;
- a glob (``data/*.png``, ``data/**/*.png``): the matching files, sorted;
- a text list (``.txt`` / ``.lst``): one value per line, blank lines and ``#`` comments skipped;
- a CSV file (``.csv``): the column named NODE.PARAM if the header has it, else the first
  column; ``list.csv:col`` picks column ``col``; ``--over list.csv`` (no ``=``) takes every
  column whose header is a NODE.PARAM;
- an inline JSON list (``spade.seed=[0,1,2]``).

Relative values of a list resolve against the list's folder when that file exists there. Several
sources zip together (equal lengths) or, with ``mode="product"``, form their cross product.
"""

from __future__ import annotations

import csv
import glob as globmod
import itertools
import json
import os
import string
from pathlib import Path
from typing import Any

from .graph import GraphError, Problem

Item = dict[str, Any]
"""One item: ``{"node.param": value}``."""


def _problem(spec: str, message: str) -> GraphError:
    return GraphError([Problem(spec, message)], "--over")


def parse_over(spec: str, cwd: Path | None = None) -> dict[str, list[Any]]:
    """``"labels.path=DIR"`` -> ``{"labels.path": [values...]}`` (several keys for a CSV)."""
    cwd = cwd or Path.cwd()
    if "=" not in spec:
        path = cwd / spec
        if path.suffix.lower() == ".csv" and path.is_file():
            cols = _read_csv(path)
            keys = [k for k in cols if "." in k]
            if not keys:
                raise _problem(spec, f"{path}: no column header looks like node.param (headers: {', '.join(cols)})")
            return {k: _relative_to(cols[k], path.parent) for k in keys}
        raise _problem(spec, "expected NODE.PARAM=SOURCE (a folder, a glob, a .txt/.csv list or a JSON list), "
                             "or a .csv file whose headers are NODE.PARAM")
    key, source = (s.strip() for s in spec.split("=", 1))
    if key.count(".") < 1 or not key.split(".", 1)[0] or not key.split(".", 1)[1]:
        raise _problem(spec, f"{key!r} must be NODE.PARAM (e.g. labels.path)")
    values = read_source(source, key, cwd)
    if not values:
        raise _problem(spec, f"source {source!r} gives no items")
    return {key: values}


def read_source(source: str, key: str, cwd: Path) -> list[Any]:
    """The values a SOURCE names (see the module doc)."""
    if source.startswith("["):
        try:
            vals = json.loads(source)
        except json.JSONDecodeError as e:
            raise _problem(f"{key}={source}", f"malformed JSON list: {e.msg}") from None
        return list(vals)
    col = None
    path = cwd / source
    if not path.exists() and ".csv:" in source:
        src, col = source.rsplit(":", 1)
        path = cwd / src
    if path.is_dir():
        return [str(p.resolve()) for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")]
    if any(c in source for c in "*?["):
        pattern = source if Path(source).is_absolute() else str(cwd / source)
        return [str(Path(p).resolve()) for p in sorted(globmod.glob(pattern, recursive=True)) if Path(p).is_file()]
    if not path.is_file():
        raise _problem(f"{key}={source}", f"{path}: no such folder or list file (and not a glob or JSON list)")
    if path.suffix.lower() == ".csv":
        cols = _read_csv(path)
        name = col or (key if key in cols else next(iter(cols), None))
        if name not in cols:
            raise _problem(f"{key}={source}", f"{path} has no column {name!r} (headers: {', '.join(cols)})")
        return _relative_to(cols[name], path.parent)
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return _relative_to([ln for ln in lines if ln and not ln.startswith("#")], path.parent)


def _read_csv(path: Path) -> dict[str, list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    header = [h.strip() for h in rows[0]]
    return {h: [r[i].strip() for r in rows[1:] if len(r) > i and any(c.strip() for c in r)]
            for i, h in enumerate(header)}


def _relative_to(values: list[str], folder: Path) -> list[str]:
    out = []
    for v in values:
        p = Path(v)
        out.append(str((folder / p).resolve()) if v and not p.is_absolute() and (folder / p).exists() else v)
    return out


def combine(sources: list[dict[str, list[Any]]], mode: str = "zip") -> list[Item]:
    """Items from several sources: zipped (equal lengths) or their cross product."""
    columns: dict[str, list[Any]] = {}
    for s in sources:
        for k, v in s.items():
            if k in columns:
                raise _problem(k, f"{k} is given by more than one --over")
            columns[k] = v
    if not columns:
        return []
    keys = list(columns)
    if mode == "product":
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(columns[k] for k in keys))]
    if mode != "zip":
        raise _problem("mode", f"mode must be 'zip' or 'product' (got {mode!r})")
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise _problem(" / ".join(keys), f"zipped sources differ in length ({listing}); make them equal, "
                                         "or use the cross product (--product)")
    return [dict(zip(keys, row, strict=True)) for row in zip(*(columns[k] for k in keys), strict=True)]


# ---- per-item output names --------------------------------------------------------------------
DEFAULT_PATTERN = "{name}/{stem}"
_FIELDS = {"stem", "index", "name", "node", "p"}


def item_stem(item: Item, index: int) -> str:
    """The stem of the item's first file-like value (``landscape_01``), else its zero-padded index."""
    for v in item.values():
        if isinstance(v, str):
            stem, ext = os.path.splitext(os.path.basename(v))
            if ext:
                return stem
    return f"{index:05d}"


def check_pattern(pattern: str) -> None:
    """Raise GraphError unless ``pattern`` uses only the documented fields."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as e:
        raise _problem("--name", f"malformed pattern {pattern!r}: {e}") from None
    bad = [f for f in fields if f.split("[")[0].split(".")[0] not in _FIELDS]
    if bad or not pattern.strip():
        raise _problem("--name", f"pattern {pattern!r} uses unknown field(s) {', '.join(bad) or '(empty)'}; "
                                 "fields: {stem} {index} {name} {node} {p[node.param]}")


def item_output(original: str, pattern: str, item: Item, index: int, node: str) -> str:
    """Where item ``index`` writes the file a node would write at ``original``: the pattern is
    expanded in the original's folder and keeps its suffix (``out/x.png`` -> ``out/x/<stem>.png``)."""
    folder, base = os.path.split(original)
    name, ext = os.path.splitext(base)
    return os.path.join(folder, pattern.format(stem=item_stem(item, index), index=index, name=name, node=node,
                                               p=item) + ext)
