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


def make_parent(path: str | Path) -> None:
    """Create ``path``'s folder (and its parents); a clear error when a file stands where a folder
    must be (``[Errno 17] File exists`` said nothing about which name was taken)."""
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [parent, *parent.parents] if p.exists() and not p.is_dir()), parent)
        raise NotADirectoryError(f"cannot write {path}: {blocker} is a file, not a folder "
                                 "(choose another output path or move that file)") from None
