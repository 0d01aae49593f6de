"""Atomic file publication: write to a temp file in the target folder, then rename over."""

from __future__ import annotations

import os
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str | Path, path: str | Path) -> None:
    """Rename ``tmp`` onto ``path`` with the permissions a plain ``open()`` would have given
    (``tempfile.mkstemp`` creates 0600 files, which other users and tools could not read)."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
