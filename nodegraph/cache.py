"""Content-addressed output cache: a RAM tier bounded in bytes over a disk tier of safetensors.

A key is the sha256 of (node type, the digest of the code that computes it -- see
``codeversion.py`` --, its hand-kept version, canonical params, weights sha256, file
fingerprints, upstream keys with their output ports). Equal keys mean equal outputs, so entries
never need invalidating: an edited input file, a changed param or changed code simply yields a
new key. Each disk entry records its node type and code digest in the file's metadata, so
``nodegraph cache list`` / ``prune`` can find entries whose code no longer exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

DEFAULT_RAM_BYTES = 2 * 2**30


def default_cache_dir() -> Path:
    env = os.environ.get("NODEGRAPH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nodegraph"


def canonical(obj: Any) -> str:
    """Deterministic JSON for hashing (sorted keys, no whitespace, floats by repr)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def make_key(node_type: str, version: str, params: dict[str, Any], weights: dict[str, str],
             fingerprint: str, upstream: dict[str, str], code: str = "") -> str:
    h = hashlib.sha256()
    h.update(canonical({
        "type": node_type, "version": version, "code": code, "params": params, "weights": weights,
        "fingerprint": fingerprint, "upstream": upstream,
    }).encode())
    return h.hexdigest()


def nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.numel()
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    return 64


_EMPTY = "__nodegraph_empty__"


def _disk_storable(outputs: dict[str, Any]) -> bool:
    return all(isinstance(v, torch.Tensor) for v in outputs.values())


class Cache:
    """Two tiers. ``get`` returns (outputs, tier) or (None, None)."""

    def __init__(self, ram_bytes: int = DEFAULT_RAM_BYTES, disk_dir: Path | None = None,
                 enabled: bool = True) -> None:
        self.ram_bytes = int(ram_bytes)
        self.disk_dir = Path(disk_dir) if disk_dir else None
        self.enabled = enabled
        self.corrupt: list[str] = []
        """Keys of disk entries found unreadable (and removed) during this session."""
        self._ram: OrderedDict[str, tuple[dict[str, Any], int, dict[str, str]]] = OrderedDict()
        self._used = 0

    # ---- RAM tier -----------------------------------------------------------------------
    def _ram_put(self, key: str, outputs: dict[str, Any], meta: dict[str, str]) -> None:
        size = nbytes(outputs)
        if size > self.ram_bytes:
            return
        if key in self._ram:
            self._used -= self._ram.pop(key)[1]
        self._ram[key] = (outputs, size, meta)
        self._used += size
        while self._used > self.ram_bytes and self._ram:
            _, (_, s, _) = self._ram.popitem(last=False)
            self._used -= s

    @property
    def ram_used(self) -> int:
        return self._used

    # ---- disk tier ----------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        assert self.disk_dir is not None
        return self.disk_dir / key[:2] / f"{key}.safetensors"

    def _disk_get(self, key: str, device: torch.device) -> tuple[dict[str, Any], dict[str, str]] | None:
        if self.disk_dir is None:
            return None
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            with safe_open(str(p), framework="pt", device=str(device)) as f:
                meta = dict(f.metadata() or {})
                got = {k: f.get_tensor(k) for k in f.keys() if k != _EMPTY}
            return got, meta
        except Exception:  # noqa: BLE001 - a corrupt entry is a miss, and is removed
            p.unlink(missing_ok=True)
            self.corrupt.append(key)
            return None

    def _disk_put(self, key: str, outputs: dict[str, Any], meta: dict[str, str]) -> None:
        if self.disk_dir is None or not _disk_storable(outputs):
            return
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        os.close(fd)
        try:
            tensors = {k: v.detach().contiguous().cpu() for k, v in outputs.items()}
            save_file(tensors or {_EMPTY: torch.zeros(1)}, tmp, metadata=meta or None)
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # ---- API ----------------------------------------------------------------------------
    def get(self, key: str, device: torch.device | str = "cpu") -> tuple[dict[str, Any] | None, str | None]:
        outputs, tier, _ = self.get_entry(key, device)
        return outputs, tier

    def get_entry(self, key: str, device: torch.device | str = "cpu"
                  ) -> tuple[dict[str, Any] | None, str | None, dict[str, str]]:
        """(outputs, tier, metadata recorded with them) or (None, None, {})."""
        if not self.enabled:
            return None, None, {}
        hit = self._ram.get(key)
        if hit is not None:
            self._ram.move_to_end(key)
            return hit[0], "ram", hit[2]
        got = self._disk_get(key, torch.device(device))
        if got is not None:
            self._ram_put(key, *got)
            return got[0], "disk", got[1]
        return None, None, {}

    def put(self, key: str, outputs: dict[str, Any], disk: bool = True, meta: dict[str, str] | None = None) -> None:
        """Store ``outputs``; ``meta`` (str -> str: node type, code digest, written files) goes
        into the disk entry's safetensors header."""
        if not self.enabled:
            return
        self._ram_put(key, outputs, meta or {})
        if disk:
            self._disk_put(key, outputs, meta or {})

    def clear(self, disk: bool = True) -> int:
        """Empty the cache; returns the bytes removed from disk."""
        self._ram.clear()
        self._used = 0
        removed = 0
        if disk and self.disk_dir and self.disk_dir.is_dir():
            for p in self.disk_dir.rglob("*.safetensors"):
                removed += p.stat().st_size
                p.unlink()
        return removed

    def disk_usage(self) -> tuple[int, int]:
        if not self.disk_dir or not self.disk_dir.is_dir():
            return 0, 0
        files = list(self.disk_dir.rglob("*.safetensors"))
        return len(files), sum(f.stat().st_size for f in files)


def entry_meta(path: Path) -> dict[str, str] | None:
    """The metadata header of one disk entry (None if unreadable)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - unreadable: the caller reports it
        return None


def stale_entries(disk_dir: Path, current: Any) -> list[tuple[Path, str]]:
    """(entry, why) for every disk entry written by code that no longer exists: its node type is
    gone, or ``current(node_type)`` (the digest of that type's code now) differs from the digest
    recorded with it, or it was written before digests were recorded, or it cannot be read."""
    out = []
    for p in sorted(Path(disk_dir).rglob("*.safetensors")):
        meta = entry_meta(p)
        if meta is None:
            out.append((p, "unreadable"))
            continue
        node_type, code = meta.get("node_type"), meta.get("code")
        if not node_type or not code:
            out.append((p, "written before code digests were recorded"))
            continue
        now = current(node_type)
        if now is None:
            out.append((p, f"node type {node_type} no longer exists"))
        elif now != code:
            out.append((p, f"{node_type}: its code changed since"))
    return out
