"""Weights: safetensors only, named through ``weights/manifest.json``.

A weights reference is either a manifest name (``"spade_landscape"``) or a path to a
``.safetensors`` file. The manifest records for each name: file, node type, sha256, a shape
summary, provenance (exact command, data, steps) and measured quality.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .fsutil import make_parent, publish
from .node import file_digest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class WeightsError(FileNotFoundError):
    pass


def weights_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("NODEGRAPH_WEIGHTS")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(PROJECT_ROOT / "weights")
    return dirs


def read_manifest(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    path = (directory or PROJECT_ROOT / "weights") / "manifest.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data.get("weights", data) if isinstance(data, dict) else {}


def manifest_config(ref: str) -> dict[str, Any]:
    """The ``config`` a manifest entry records for ``ref`` (first weights folder that lists it).

    The training engine records the exporting node's params under ``config["params"]``; they are
    unnested here (None values dropped, top-level keys win), so converters' and trainers' entries
    read the same way. ``{}`` when no manifest lists ``ref`` with a config.
    """
    for d in weights_dirs():
        entry = read_manifest(d).get(ref)
        if entry and isinstance(entry.get("config"), dict):
            conf = dict(entry["config"])
            params = conf.pop("params", None)
            if isinstance(params, dict):
                conf = {**{k: v for k, v in params.items() if v is not None}, **conf}
            return conf
    return {}


def resolve(ref: str, base_dir: Path | None = None) -> Path:
    """Path of the safetensors file a weights reference names; WeightsError if absent."""
    if not ref:
        raise WeightsError("empty weights reference")
    candidates: list[Path] = []
    p = Path(ref).expanduser()
    if p.suffix == ".safetensors" or os.sep in ref or "/" in ref:
        if p.is_absolute():
            candidates.append(p)
        else:
            if base_dir is not None:
                candidates.append(base_dir / p)
            candidates.append(PROJECT_ROOT / p)
            candidates.append(Path.cwd() / p)
    else:
        for d in weights_dirs():
            entry = read_manifest(d).get(ref)
            if entry is not None:
                candidates.append(d / entry.get("file", f"{ref}.safetensors"))
            candidates.append(d / f"{ref}.safetensors")
    for c in candidates:
        if c.is_file():
            if c.suffix in (".pth", ".pt", ".ckpt", ".pkl"):
                raise WeightsError(
                    f"{c} is a pickle checkpoint; nodegraph loads only safetensors. "
                    f"Convert it once with `nodegraph convert ...`"
                )
            return c
    names = sorted(set().union(*(read_manifest(d).keys() for d in weights_dirs())))
    raise WeightsError(
        f"weights {ref!r} not found (looked in {', '.join(str(c) for c in candidates) or 'nowhere'}; "
        f"known names: {', '.join(names) or 'none'})"
    )


def digest(ref: str, base_dir: Path | None = None) -> str:
    return file_digest(resolve(ref, base_dir))


def load(ref: str, base_dir: Path | None = None, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    path = resolve(ref, base_dir)
    return load_file(str(path), device=str(device))


def state_dict_mismatch(have: dict[str, torch.Tensor], want: dict[str, Any],
                        extra_ok: bool = False) -> list[str]:
    """Why the tensors ``have`` do not fit ``want`` (a state_dict, or key -> shape): message
    parts naming missing keys, unexpected keys (unless ``extra_ok``) and shape mismatches, a few
    of each; empty when they fit."""
    def shape(v: Any) -> tuple[int, ...]:
        return tuple(v.shape) if hasattr(v, "shape") else tuple(v)

    missing = [k for k in want if k not in have]
    unexpected = [] if extra_ok else [k for k in have if k not in want]
    wrong = [f"{k}: file {shape(have[k])} vs expected {shape(want[k])}"
             for k in want if k in have and shape(have[k]) != shape(want[k])]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        parts.append(f"shape mismatches: {'; '.join(wrong[:3])}")
    return parts


def load_into(module: torch.nn.Module, ref: str, base_dir: Path | None = None, strict: bool = True) -> None:
    """Load a weights reference into ``module`` with a readable error on key mismatch."""
    sd = load(ref, base_dir)
    parts = state_dict_mismatch(sd, module.state_dict()) if strict else []
    if parts:
        raise WeightsError(f"weights {ref!r} do not fit {type(module).__name__}: " + ", ".join(parts)
                           + " — were they made for other params (ngf, preset, size)?")
    module.load_state_dict(sd, strict=strict)


def save_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file through a temp file + rename: never half a file."""
    path = Path(path)
    make_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        save_file(clean, tmp, metadata=metadata)
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def same_weights(a: Path, b: Path) -> bool:
    """True when two safetensors files hold equal tensors (names, dtypes, values) and metadata.

    Byte comparison is not enough: safetensors writes the metadata from a hash map whose order
    changes from process to process, so two exports of the same weights differ in their bytes.
    """
    with safe_open(str(a), "pt") as fa, safe_open(str(b), "pt") as fb:
        if fa.metadata() != fb.metadata() or set(fa.keys()) != set(fb.keys()):
            return False
        return all(torch.equal(fa.get_tensor(k), fb.get_tensor(k)) for k in fa.keys())


def write_json_atomic(data: Any, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    publish(tmp, path)


def shape_summary(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    return {
        "tensors": len(tensors),
        "parameters": int(sum(t.numel() for t in tensors.values())),
        "dtypes": sorted({str(t.dtype).replace("torch.", "") for t in tensors.values()}),
    }


def export(name: str, tensors: dict[str, torch.Tensor], node_type: str, provenance: dict[str, Any],
           quality: dict[str, Any] | None = None, directory: Path | None = None,
           config: dict[str, Any] | None = None) -> Path:
    """Save ``weights/NAME.safetensors`` and record it in the manifest (both atomically)."""
    directory = Path(directory or PROJECT_ROOT / "weights")
    path = directory / f"{name}.safetensors"
    save_atomic(tensors, path, metadata={"node_type": node_type, "name": name})
    manifest_path = directory / "manifest.json"
    data = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    data.setdefault("weights", {})
    entry = dict(data["weights"].get(name, {}))
    entry.update({
        "file": path.name,
        "node_type": node_type,
        "sha256": file_digest(path),
        "bytes": path.stat().st_size,
        "shapes": shape_summary(tensors),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "provenance": provenance,
    })
    if config is not None:
        entry["config"] = config
    if quality is not None:
        entry["quality"] = quality
    data["weights"][name] = entry
    write_json_atomic(data, manifest_path)
    return path
