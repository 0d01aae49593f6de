"""Training checkpoints: safetensors for every tensor + a JSON sidecar for the rest. No pickle.

A checkpoint ``checkpoints/step_00000500`` in the run dir is two files:

- ``step_00000500.safetensors`` — ``param/<node>/<key>`` (module state dicts of trained nodes),
  ``optim/<objective>/<index>/<name>`` (optimizer state tensors), ``rng/<name>`` (uint8 RNG states);
- ``step_00000500.json`` — step, graph hash and canonical graph, optimizer param groups and scalar
  state, scheduler and AMP scaler state, losses, and the sha256 of the tensor file.

Both are written through a temp file + rename; the JSON is written last, so a checkpoint whose
JSON exists is complete (a crash mid-write leaves the previous one as the newest).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from ..node import file_digest
from ..weights import save_atomic, write_json_atomic

_NAME = re.compile(r"^step_(\d+)\.json$")


# ---- optimizer state ---------------------------------------------------------------------
def optimizer_to_flat(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON-able data."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"optim/{name}/{idx}/{key}"] = val
            else:
                scalars.setdefault(str(idx), {})[key] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                        meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim/{name}/"
    for key, val in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix):].split("/", 1)
            state.setdefault(int(idx), {})[field] = val
    for idx, vals in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(vals)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# ---- RNG ---------------------------------------------------------------------------------
def rng_to_flat() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG this process draws from, as uint8 tensors (+ Python's state as JSON)."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, st in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda{i}"] = st
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).view(np.uint8).copy())
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(cached)], "python": _py_state()}
    return tensors, meta


def _py_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def rng_from_flat(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    if "rng/torch" in tensors:
        torch.set_rng_state(tensors["rng/torch"])
    if torch.cuda.is_available():
        states = [tensors[f"rng/cuda{i}"] for i in range(torch.cuda.device_count()) if f"rng/cuda{i}" in tensors]
        if states:
            torch.cuda.set_rng_state_all(states)
    if "rng/numpy" in tensors and "numpy" in meta:
        kind, pos, has_gauss, cached = meta["numpy"]
        keys = tensors["rng/numpy"].numpy().view(np.uint32)
        np.random.set_state((kind, keys, pos, has_gauss, cached))
    if "python" in meta:
        version, internal, gauss = meta["python"]
        random.setstate((version, tuple(internal), gauss))


# ---- files -------------------------------------------------------------------------------
def ckpt_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save(run_dir: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
         keep: int = 3) -> Path:
    """Write checkpoint ``step`` atomically; keep only the newest ``keep``. Returns the JSON path."""
    d = ckpt_dir(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    stem = f"step_{step:08d}"
    # clone: safetensors refuses tensors sharing storage (tied weights, views of one buffer)
    save_atomic({k: v.detach().cpu().clone() for k, v in tensors.items()}, d / f"{stem}.safetensors")
    meta = dict(meta, step=step, tensors=f"{stem}.safetensors",
                tensors_sha256=file_digest(d / f"{stem}.safetensors"))
    write_json_atomic(meta, d / f"{stem}.json")
    for old in list_checkpoints(run_dir)[:-keep]:
        for p in (old, old.with_suffix(".safetensors")):
            p.unlink(missing_ok=True)
    return d / f"{stem}.json"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints (JSON + tensors present), oldest first."""
    d = ckpt_dir(run_dir)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m and p.with_suffix(".safetensors").is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def load(json_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint, verifying the tensor file against the digest in its JSON."""
    meta = json.loads(Path(json_path).read_text())
    tpath = Path(json_path).with_suffix(".safetensors")
    got = file_digest(tpath)
    if meta.get("tensors_sha256") and got != meta["tensors_sha256"]:
        raise ValueError(f"checkpoint {tpath} is corrupt (sha256 {got[:12]} != {meta['tensors_sha256'][:12]})")
    return load_file(str(tpath)), meta


def canonical_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


# ---- whole training state ------------------------------------------------------------------
def pack(modules: dict[str, torch.nn.Module], optims: dict[str, torch.optim.Optimizer],
         opt_types: dict[str, str], scalers: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Trained modules, optimizers, AMP scalers and RNG as (tensors, JSON-able meta)."""
    tensors: dict[str, torch.Tensor] = {}
    for nid, mod in modules.items():
        for k, v in mod.state_dict().items():
            tensors[f"param/{nid}/{k}"] = v
    optim_meta = {}
    for name, opt in optims.items():
        t, m = optimizer_to_flat(name, opt)
        tensors.update(t)
        optim_meta[name] = dict(m, type=opt_types[name], sizes=_sizes(opt))
    rng_t, rng_m = rng_to_flat()
    tensors.update(rng_t)
    meta = {"optimizers": optim_meta, "rng": rng_m, "scalers": {n: s.state_dict() for n, s in scalers.items()}}
    return tensors, meta


def _sizes(opt: torch.optim.Optimizer) -> list[list[list[int]]]:
    return [[list(p.shape) for p in g["params"]] for g in opt.param_groups]


def unpack(modules: dict[str, torch.nn.Module], optims: dict[str, torch.optim.Optimizer],
           opt_types: dict[str, str], scalers: dict[str, Any], tensors: dict[str, torch.Tensor],
           meta: dict[str, Any]) -> list[tuple[str, str]]:
    """Restore the state ``pack`` saved. If the graph changed in a way the checkpoint cannot
    follow, restore nothing and return the reasons as (where, message)."""
    problems: list[tuple[str, str]] = []
    states: dict[str, dict[str, torch.Tensor]] = {}
    for nid, mod in modules.items():
        prefix = f"param/{nid}/"
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        own = mod.state_dict()
        if not sd:
            problems.append((nid, "was not trained in the checkpoint's run"))
            continue
        missing = [k for k in own if k not in sd]
        extra = [k for k in sd if k not in own]
        shapes = [f"{k} {tuple(sd[k].shape)} -> {tuple(own[k].shape)}" for k in own
                  if k in sd and sd[k].shape != own[k].shape]
        if missing or extra or shapes:
            parts = ([f"new keys {missing[:3]}"] if missing else []) + \
                ([f"gone keys {extra[:3]}"] if extra else []) + ([f"shapes {shapes[:3]}"] if shapes else [])
            problems.append((nid, "its network changed: " + "; ".join(parts)))
        states[nid] = sd
    saved = meta.get("optimizers", {})
    for name, opt in optims.items():
        m = saved.get(name)
        if m is None:
            problems.append((f"train.objectives.{name}", "not in the checkpoint"))
        elif m.get("type") != opt_types[name]:
            problems.append((f"train.objectives.{name}.optimizer.type", f"was {m.get('type')!r} in the checkpoint"))
        elif m.get("sizes") != _sizes(opt):
            problems.append((f"train.objectives.{name}.updates", "the parameters it updates changed"))
    if problems:
        return problems
    for nid, mod in modules.items():
        mod.load_state_dict(states[nid])
    for name, opt in optims.items():
        lrs = [g["initial_lr"] for g in opt.param_groups]
        optimizer_from_flat(name, opt, tensors, saved[name])
        for g, lr in zip(opt.param_groups, lrs, strict=True):  # the graph's lr wins over the saved one
            g["initial_lr"] = lr
    for name, st in meta.get("scalers", {}).items():
        if name in scalers:
            scalers[name].load_state_dict(st)
    rng_from_flat(tensors, meta.get("rng", {}))
    return []


def graph_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Which nodes / train keys differ between two graph dumps (for the resume warning)."""
    changed = []
    for nid in sorted(set(old.get("nodes", {})) | set(new.get("nodes", {}))):
        if old.get("nodes", {}).get(nid) != new.get("nodes", {}).get(nid):
            changed.append(f"node {nid}")
    old_t, new_t = old.get("train") or {}, new.get("train") or {}
    for key in sorted(set(old_t) | set(new_t)):
        if old_t.get(key) != new_t.get(key):
            changed.append(f"train.{key}")
    return "changed: " + ", ".join(changed) if changed else "metadata changed"
