"""InterFaceGAN / IDInvert boundary files (``boundaries/stylegan_ffhq256/age.npy``) read without
running pickle.

Two layouts exist: a plain float ``.npy`` (``1 x D`` or ``1 x L x D``), read with
``np.load(allow_pickle=False)``; and a 0-d object array holding the dict
``{'boundary': 1 x L x D float32 (unit norm per layer), 'meta_data': {'manipulate_layers': [...]}}``
that ``np.save`` pickled. The second is parsed by ``SafeUnpickler``: the pickle opcodes are
interpreted, but ``find_class`` admits only the four callables numpy's own array pickling uses
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``, ``_codecs.encode``);
any other global (``os.system``, ``builtins.eval`` ...) raises ``UnsafeFileError`` before it is
looked up, so no code from the file runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class UnsafeFileError(ValueError):
    """The file asks for a Python object outside the allow-list (or is not a boundary)."""


class SafeUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` admits only ``ALLOWED_GLOBALS``."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeFileError(f"the file asks for {module}.{name}, which a boundary never needs; refused "
                                  "(nothing from the file was run)")
        if name == "_reconstruct":
            core = getattr(np, "_core", None) or np.core  # numpy 2.x / 1.x
            return core.multiarray._reconstruct
        return super().find_class(module, name)


def _object_payload(raw: bytes) -> Any:
    """The pickled object after the .npy header of a 0-d object array."""
    f = io.BytesIO(raw)
    version = np.lib.format.read_magic(f)
    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = header(f)
    if dtype != np.dtype(object):
        raise UnsafeFileError(f"expected a float or object array, got dtype {dtype}")
    obj = SafeUnpickler(f, encoding="latin1").load()
    return obj.item() if isinstance(obj, np.ndarray) and obj.shape == () and shape == () else obj


def read_boundary(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """(boundary float32 array, meta_data dict) from an InterFaceGAN ``.npy``.

    Raises:
        FileNotFoundError: no such file.
        UnsafeFileError: the file needs objects outside the allow-list, or holds no ``boundary``.
    """
    raw = Path(path).read_bytes()
    try:
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
        return np.asarray(arr, dtype=np.float32), {}
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise UnsafeFileError(f"{path}: not a .npy array ({e})") from None
    obj = _object_payload(raw)
    if not isinstance(obj, dict) or "boundary" not in obj:
        raise UnsafeFileError(f"{path}: an object array without a 'boundary' entry ({type(obj).__name__})")
    meta = obj.get("meta_data") or {}
    if not isinstance(meta, dict):
        meta = {}
    return np.asarray(obj["boundary"], dtype=np.float32), meta
