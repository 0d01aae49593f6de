"""The results index of a mapped job: one JSON object per item and line (JSONL).

A record::

    {"job": "<sha256 of the graph + settings>", "index": 3, "item": {"labels.path": "..."},
     "status": "ok" | "error", "outputs": [{"node": "save", "path": "...", "sha256": "..."}],
     "values": {"metric.value": 0.12}, "seconds": 0.41,
     "error": {"node": "labels", "where": "labels.params.path", "message": "..."} | null}

Lines are appended with one ``write`` each on an ``O_APPEND`` descriptor after the item's files
are published, so a killed job leaves every written line whole (a torn last line, if the machine
itself dies, is skipped when read). At the end of a job the index is rewritten atomically with one
record per item, in item order. Under torchrun each rank appends to ``<index>.part<rank>`` and
rank 0 merges the parts.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .cache import canonical
from .fsutil import publish
from .node import file_digest


def item_key(item: dict[str, Any]) -> str:
    return canonical(item)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every whole record of an index (torn or foreign lines skipped)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "item" in rec:
            out.append(rec)
    return out


def part_paths(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.part*"))


def latest(path: Path, job: str) -> dict[str, dict[str, Any]]:
    """The last record of job ``job`` per item key, from the index and any rank parts."""
    out: dict[str, dict[str, Any]] = {}
    for p in [path, *part_paths(path)]:
        for rec in read_records(p):
            if rec.get("job") == job:
                out[item_key(rec["item"])] = rec
    return out


def is_done(rec: dict[str, Any] | None) -> bool:
    """True when the record is a success whose files all exist with their recorded sha256."""
    if not rec or rec.get("status") != "ok":
        return False
    for o in rec.get("outputs", []):
        p = o.get("path")
        if not p or not os.path.isfile(p) or file_digest(p) != o.get("sha256"):
            return False
    return True


class IndexWriter:
    """Appends records, one ``os.write`` per line (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, rec: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(rec, default=str) + "\n").encode("utf-8"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def compact(path: Path, job: str, order: list[str]) -> list[dict[str, Any]]:
    """Rewrite the index with one record of ``job`` per item key of ``order`` (records of other
    jobs dropped, rank parts merged and removed); returns the records written."""
    recs = latest(path, job)
    final = [recs[k] for k in order if k in recs]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for rec in final:
            f.write(json.dumps(rec, default=str) + "\n")
    publish(tmp, path)
    for p in part_paths(path):
        p.unlink(missing_ok=True)
    return final
