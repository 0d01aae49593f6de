"""Content-addressed output cache: a RAM tier bounded in bytes over a disk tier of safetensors.

A key is the sha256 of (node type, node code version, canonical params, weights sha256, file
fingerprints, upstream keys). Equal keys mean equal outputs, so entries never need
invalidating: an edited input file or a changed param simply yields a new key.
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
from safetensors.torch import load_file, save_file

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
             fingerprint: str, upstream: dict[str, str]) -> str:
    h = hashlib.sha256()
    h.update(canonical({
        "type": node_type, "version": version, "params": params, "weights": weights,
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
        self._ram: OrderedDict[str, tuple[dict[str, Any], int]] = OrderedDict()
        self._used = 0

    # ---- RAM tier -----------------------------------------------------------------------
    def _ram_put(self, key: str, outputs: dict[str, Any]) -> None:
        size = nbytes(outputs)
        if size > self.ram_bytes:
            return
        if key in self._ram:
            self._used -= self._ram.pop(key)[1]
        self._ram[key] = (outputs, size)
        self._used += size
        while self._used > self.ram_bytes and self._ram:
            _, (_, s) = self._ram.popitem(last=False)
            self._used -= s

    @property
    def ram_used(self) -> int:
        return self._used

    # ---- disk tier ----------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        assert self.disk_dir is not None
        return self.disk_dir / key[:2] / f"{key}.safetensors"

    def _disk_get(self, key: str, device: torch.device) -> dict[str, Any] | None:
        if self.disk_dir is None:
            return None
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            got = load_file(str(p), device=str(device))
            got.pop(_EMPTY, None)
            return got
        except Exception:  # noqa: BLE001 - a corrupt entry is a miss, and is removed
            p.unlink(missing_ok=True)
            return None

    def _disk_put(self, key: str, outputs: dict[str, Any]) -> None:
        if self.disk_dir is None or not _disk_storable(outputs):
            return
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        os.close(fd)
        try:
            tensors = {k: v.detach().contiguous().cpu() for k, v in outputs.items()}
            save_file(tensors or {_EMPTY: torch.zeros(1)}, tmp)
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # ---- API ----------------------------------------------------------------------------
    def get(self, key: str, device: torch.device | str = "cpu") -> tuple[dict[str, Any] | None, str | None]:
        if not self.enabled:
            return None, None
        hit = self._ram.get(key)
        if hit is not None:
            self._ram.move_to_end(key)
            return hit[0], "ram"
        got = self._disk_get(key, torch.device(device))
        if got is not None:
            self._ram_put(key, got)
            return got, "disk"
        return None, None

    def put(self, key: str, outputs: dict[str, Any], disk: bool = True) -> None:
        if not self.enabled:
            return
        self._ram_put(key, outputs)
        if disk:
            self._disk_put(key, outputs)

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
