"""Sweeps declared in a graph file: every combination of some params, run with shared-prefix
caching, summarised in one table (CSV + markdown: the params and the Scalar outputs) and one
captioned contact sheet of an Image output.

::

    "sweep": {"mode": "product", "smooth.lam": [1e-4, 1e-3], "spade.seed": [0, 1]}

Keys with a dot are ``node.param`` with a non-empty list of values; the settings are ``mode``
(``zip``: the i-th values together, equal lengths; ``product``: every combination; default
``product``), ``name`` (per-variant output names, default ``{name}_sweep/{index:03d}``, see
``nodegraph.over``) and ``image`` (the ``node.port`` Image output tiled in the contact sheet;
default: the last Image output of the varying part of the graph). The table and the sheet go
next to the results index: ``<graph>.sweep.csv``, ``.sweep.md``, ``.sweep.png``.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .fsutil import publish
from .graph import Graph, GraphError, Problem
from .mapper import ItemResult, MapJob
from .types import Image

SETTINGS = {"mode", "name", "image"}
DEFAULT_SWEEP_PATTERN = "{name}_sweep/{index:03d}"


@dataclass
class Sweep:
    items: list[dict[str, Any]]
    pattern: str = DEFAULT_SWEEP_PATTERN
    image: str | None = None
    keys: list[str] = field(default_factory=list)


def parse_sweep(section: Any, source: str = "sweep") -> Sweep:
    """Check a ``sweep`` section and expand it into items; GraphError names every problem."""
    if not isinstance(section, dict) or not section:
        raise GraphError([Problem("sweep", "must be an object: {\"node.param\": [values...], \"mode\": "
                                           "\"product\" | \"zip\"}")], source)
    problems = []
    columns: dict[str, list[Any]] = {}
    for k, v in section.items():
        if "." not in k:
            if k not in SETTINGS:
                problems.append(Problem(f"sweep.{k}", f"unknown setting (settings: {', '.join(sorted(SETTINGS))}; "
                                                      "a swept param is written node.param)"))
        elif not isinstance(v, list) or not v:
            problems.append(Problem(f"sweep.{k}", f"must be a non-empty list of values (got {v!r})"))
        else:
            columns[k] = v
    mode = section.get("mode", "product")
    if mode not in ("zip", "product"):
        problems.append(Problem("sweep.mode", f"must be 'zip' or 'product' (got {mode!r})"))
    if not columns:
        problems.append(Problem("sweep", "no swept param (a key node.param with a list of values)"))
    if mode == "zip" and len({len(v) for v in columns.values()}) > 1:
        listing = ", ".join(f"{k}: {len(v)}" for k, v in columns.items())
        problems.append(Problem("sweep.mode", f"zip needs lists of equal length ({listing}); use \"product\""))
    image = section.get("image")
    if image is not None and (not isinstance(image, str) or image.count(".") != 1):
        problems.append(Problem("sweep.image", f"must be node.port (got {image!r})"))
    if problems:
        raise GraphError(problems, source)
    keys = list(columns)
    combos = itertools.product(*columns.values()) if mode == "product" else zip(*columns.values(), strict=True)
    items = [dict(zip(keys, c, strict=True)) for c in combos]
    return Sweep(items, section.get("name", DEFAULT_SWEEP_PATTERN), image, keys)


def sweep_job(g: Graph, sweep: Sweep, **options: Any) -> MapJob:
    options.setdefault("memo_bytes", 2**30)  # a product shares intermediate results between variants
    try:
        return MapJob(g, sweep.items, pattern=sweep.pattern, kind="sweep", **options)
    except GraphError as e:  # name the sweep section, not --over
        raise GraphError([Problem(f"sweep.{p.where}" if "." in p.where else p.where, p.message)
                          for p in e.problems], g.source) from None


def sheet_port(job: MapJob, sweep: Sweep) -> tuple[str, str] | None:
    if sweep.image:
        nid, port = sweep.image.split(".")
        if nid not in job.part or not isinstance(job.ex.ports[nid][1].get(port), Image):
            raise GraphError([Problem("sweep.image", f"{sweep.image} is not an Image output of a node the "
                                                     "sweep changes")], job.graph.source)
        return nid, port
    for nid in reversed(job.part):
        for port, t in job.ex.ports[nid][1].items():
            if isinstance(t, Image):
                return nid, port
    return None


def run_sweep(g: Graph, sweep: Sweep, **options: Any) -> dict[str, Any]:
    """Run every variant; write the table and contact sheet; returns their paths and the rows."""
    job = sweep_job(g, sweep, **options)
    port = sheet_port(job, sweep)
    tiles: dict[int, torch.Tensor] = {}
    results: list[ItemResult] = []
    for r in job.run():
        if r.status == "ok" and port and port[0] in r.results:
            tiles[r.index] = r.results[port[0]][port[1]][0].detach().float().cpu()
        r.results = {}
        results.append(r)
    results.sort(key=lambda r: r.index)
    base = job.index_path.with_suffix("").with_suffix("")  # <dir>/<graph>.index.jsonl -> <dir>/<graph>
    rows = table_rows(results, sweep.keys, base.parent)
    out = {"rows": rows, "csv": Path(f"{base}.sweep.csv"), "md": Path(f"{base}.sweep.md")}
    _write_text(out["csv"], to_csv(rows))
    _write_text(out["md"], to_markdown(rows))
    for r in results:  # variants done in an earlier run: tile their saved picture
        if r.index not in tiles and r.status in ("ok", "skipped"):
            got = _load_first_image(r.outputs)
            if got is not None:
                tiles[r.index] = got
    if tiles:
        from .contact import contact_sheet

        captions = {r.index: caption(r, sweep.keys) for r in results}
        out["sheet"] = Path(f"{base}.sweep.png")
        contact_sheet([tiles[i] for i in sorted(tiles)], [captions[i] for i in sorted(tiles)], out["sheet"])
    return out


def table_rows(results: list[ItemResult], keys: list[str], folder: Path) -> list[dict[str, Any]]:
    names = sorted({k for r in results for k in r.values})
    rows = []
    for r in results:
        row: dict[str, Any] = {"variant": r.index, **{k: r.item.get(k) for k in keys}}
        row.update({k: r.values.get(k) for k in names})
        row["status"] = "ok" if r.status == "skipped" else r.status
        row["seconds"] = round(r.seconds, 3)
        row["output"] = os.path.relpath(r.outputs[0]["path"], folder) if r.outputs else \
            (r.error or {}).get("where", "")
        rows.append(row)
    return rows


def caption(r: ItemResult, keys: list[str]) -> str:
    parts = [f"{k}={_fmt(r.item.get(k))}" for k in keys]
    parts += [f"{k}={_fmt(v)}" for k, v in sorted(r.values.items())]
    return "\n".join(parts)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    s = str(v)
    if isinstance(v, str) and "/" in s:  # a path: its file name says enough
        s = Path(s).name
    return s if len(s) <= 28 else "…" + s[-27:]


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def to_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    cell = (lambda c, v: "" if v is None else str(v) if c == "output" else _fmt(v))  # noqa: E731
    lines += ["| " + " | ".join(cell(c, r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    publish(tmp, path)


def _load_first_image(outputs: list[dict[str, str]]) -> torch.Tensor | None:
    import numpy as np
    from PIL import Image as PILImage

    for o in outputs:
        try:
            with PILImage.open(o["path"]) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
            return torch.from_numpy(arr.copy()).permute(2, 0, 1)
        except (OSError, ValueError):
            continue
    return None


def check_sweep(g: Graph) -> int:
    """Validate the graph's sweep section (settings, swept params, every variant's values) without
    running anything; returns the number of variants or raises GraphError."""
    sw = parse_sweep(g.spec.sweep, g.source)
    job = sweep_job(g, sw, lock=False)
    bad = job.precheck(list(range(len(sw.items))))
    if bad:
        raise GraphError([Problem(f"sweep variant {i} ({job._label(i)})", "; ".join(m))
                          for i, m in sorted(bad.items())], g.source)
    return len(sw.items)
