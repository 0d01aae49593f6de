"""The node base class: a typed door to a piece of work.

A node type declares

- ``type_name`` — its dotted registry name (``"pis.AffinitySmooth"``);
- ``Params`` — a pydantic model (defaults, bounds, enums, docs) — fields annotated with
  ``InputFile`` / ``OutputFile`` / ``WeightsRef`` are resolved against the graph's folder and
  checked for existence at validation;
- ``inputs`` / ``outputs`` — name -> port type (``nodegraph.types``); ``resolve_ports`` may
  refine them from params and upstream types (e.g. a label set chosen by a param);
- ``setup()`` — build networks and load weights (called once, lazily, before the first forward);
- ``forward(**inputs) -> dict`` — the work.

A node instance is also usable on its own: ``node = nodegraph.create("image.Resize", size=128)``
then ``node(image=x)`` validates inputs and outputs against the declared ports.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

from .types import PortError, PortType


def _carries_grad(v: Any) -> bool:
    """True if ``v`` (a tensor, module, or nested list / tuple / dict of them) has a tensor
    that requires grad -- a caller who wants gradients back through a node."""
    if isinstance(v, torch.Tensor):
        return v.requires_grad
    if isinstance(v, torch.nn.Module):
        return any(p.requires_grad for p in v.parameters())
    if isinstance(v, (list, tuple)):
        return any(_carries_grad(x) for x in v)
    if isinstance(v, dict):
        return any(_carries_grad(x) for x in v.values())
    return False

class NodeWarning(UserWarning):
    """A warning a node raises with ``warnings.warn`` (or ``ctx.warn`` outside an executor): the
    executor turns it into a ``warning`` event naming the node; standalone calls
    (``nodegraph.create``) leave it to Python's ``warnings``."""


def _default_emit(event: str, **kw: Any) -> None:
    """Events of a node used on its own: warnings reach Python's ``warnings``, the rest is dropped."""
    if event == "warning":
        import warnings

        who = kw.get("node") or "node"
        warnings.warn(f"{who}: {kw.get('message', '')}", NodeWarning, stacklevel=3)


class NodeError(RuntimeError):
    """An error attributed to a node (and optionally one of its ports or params)."""

    def __init__(self, message: str, node: str | None = None, where: str | None = None):
        self.node = node
        self.where = where
        super().__init__(message)


@dataclass(frozen=True)
class PathKind:
    """Marks a str param as a filesystem path: ``input``, ``output`` or ``weights``."""

    kind: str


InputFile = Annotated[str, PathKind("input")]
"""A param naming an existing file (resolved against the graph's folder, then the project root)."""
OutputFile = Annotated[str, PathKind("output")]
"""A param naming a file to write (resolved against the graph's folder)."""
InputDir = Annotated[str, PathKind("input_dir")]
"""A param naming an existing directory (e.g. a dataset root)."""
WeightsRef = Annotated[str, PathKind("weights")]
"""A weights name from ``weights/manifest.json`` or a path to a ``.safetensors`` file.
The empty string means "no weights" (random init)."""


def path_kind(field_info: Any) -> str | None:
    for meta in getattr(field_info, "metadata", ()):  # pydantic FieldInfo
        if isinstance(meta, PathKind):
            return meta.kind
    return None


class Params(BaseModel):
    """Base for every node's params: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


@dataclass
class Context:
    """What a node may use from the engine while it runs."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    emit: Callable[..., None] = _default_emit
    node_id: str = ""
    base_dir: Path = field(default_factory=Path.cwd)
    training: bool = False
    input_types: dict[str, PortType] = field(default_factory=dict)
    """Resolved types of the wired inputs (e.g. the upstream label set), set by the executor."""

    def progress(self, i: int, n: int, message: str = "") -> None:
        self.emit("progress", node=self.node_id, i=int(i), n=int(n), message=message)

    def warn(self, message: str) -> None:
        self.emit("warning", node=self.node_id, message=message)


class Node:
    """Base class of every node type. Subclass, declare, register (see module doc)."""

    type_name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    """Part of the cache key beside the digest of the node's code (``codeversion.code_digest``),
    which changes by itself when the code does; bump it to invalidate results deliberately (e.g.
    when data the node reads, not its code, changed)."""
    Params: ClassVar[type[Params]] = Params
    inputs: ClassVar[dict[str, PortType]] = {}
    outputs: ClassVar[dict[str, PortType]] = {}
    cacheable: ClassVar[bool] = True
    """False for nodes with side effects (savers) or no stable output."""
    is_sink: ClassVar[bool] = False
    """Sinks (savers, viewers) are what a run computes by default."""
    batch_inputs: ClassVar[tuple[str, ...]] = ()
    """Inputs along whose first dim the node works item by item: output element k depends only
    on element k of these (and on the other, shared inputs). A mapped job (``run --over --batch``)
    concatenates items on them; a node may make this a property decided after ``setup``."""

    def __init__(self, params: Params | dict[str, Any] | None = None,
                 context: Context | None = None) -> None:
        if params is None:
            params = {}
        if isinstance(params, dict):
            params = self.Params(**params)
        self.params = params
        self.ctx = context or Context()
        self._ready = False

    # ---- declarations -------------------------------------------------------------------
    @classmethod
    def resolve_ports(cls, params: Params,
                      upstream: dict[str, PortType]) -> tuple[dict[str, PortType], dict[str, PortType]]:
        """Concrete (inputs, outputs) for these params and the types wired upstream.

        Override to make a port depend on a param (``LabelMap(params.label_set)``) or pass an
        upstream type through (a resize keeps the label set it received).
        """
        return dict(cls.inputs), dict(cls.outputs)

    @classmethod
    def doc(cls) -> str:
        return (cls.__doc__ or "").strip()

    # ---- lifecycle ----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.ctx.device

    def setup(self) -> None:
        """Build networks and load weights. Called once before the first forward."""

    def ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def forward(self, **inputs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        """Check inputs, run ``forward``, check outputs (standalone use)."""
        ins, outs = self.resolve_ports(self.params, {})
        for name in inputs:
            if name not in ins:
                raise NodeError(f"unknown input {name!r} (inputs: {', '.join(ins) or 'none'})",
                                self.type_name, f"{self.type_name}.{name}")
        for name, port in ins.items():
            if name not in inputs or inputs[name] is None:
                if not port.optional:
                    raise NodeError(f"missing input {name!r} ({port.describe()})",
                                    self.type_name, f"{self.type_name}.{name}")
                continue
            try:
                port.check(inputs[name])
            except PortError as e:
                raise NodeError(f"input {name}: {e}", self.type_name,
                                f"{self.type_name}.{name}") from None
        self.ensure_setup()
        # Autograd only where someone can use it: a training node, or an input that carries a
        # gradient (a loss on a generated image). A generator called on a label map returns a
        # plain tensor instead of holding its whole graph in memory.
        wants_grad = self.ctx.training or any(_carries_grad(v) for v in inputs.values())
        with torch.set_grad_enabled(torch.is_grad_enabled() and wants_grad):
            result = self.forward(**inputs)
        self.check_outputs(result, outs)
        return result

    def check_outputs(self, result: Any, outs: dict[str, PortType], node_id: str | None = None) -> None:
        who = node_id or self.type_name
        if not isinstance(result, dict):
            raise NodeError(f"forward() must return a dict of outputs, got {type(result).__name__}", who)
        for name, port in outs.items():
            if name not in result:
                if port.optional:
                    continue
                raise NodeError(f"output {name!r} was not produced", who, f"{who}.{name}")
            try:
                port.check(result[name])
            except PortError as e:
                raise NodeError(f"output {who}.{name} ({self.type_name}) breaks its port contract: {e}", who,
                                f"{who}.{name}") from None

    # ---- training / caching hooks -------------------------------------------------------
    def module(self) -> torch.nn.Module | None:
        """The trainable network this node owns (exported as its weights), if any.

        Default: the attribute ``net`` when it is an ``nn.Module``.
        """
        net = getattr(self, "net", None)
        return net if isinstance(net, torch.nn.Module) else None

    def export_config(self) -> dict[str, Any]:
        """The params recorded as ``config`` when training exports this node's weights (the
        manifest entry and the file's metadata). Default: the node's params. A node whose
        architecture may come from its weights (params left unset) returns the resolved values,
        so that the export loads by name alone."""
        return self.params.model_dump(mode="json")

    def train_state(self) -> dict[str, torch.Tensor]:
        """Tensors this node keeps from one training step to the next that are neither weights
        nor optimizer state (e.g. a running mean a regulariser compares against). ``nodegraph
        train`` saves them in every checkpoint (``state/<node>/<name>``) and hands them back to
        ``load_train_state`` on ``--resume``, so a resumed run continues bit-exactly.
        Default: none."""
        return {}

    def load_train_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what ``train_state`` returned (same names; tensors on the CPU)."""

    def cache_valid(self) -> bool:
        """False when a cached result cannot stand in for running (e.g. a saved file was deleted)."""
        return True

    def written_files(self) -> list[str]:
        """Files this node wrote in its last run (default: its ``OutputFile`` params that exist).
        The executor records their sha256 with the cache entry; a changed or missing file makes
        the node run again instead of being reported cached."""
        return [p for _, kind, p in self.path_params() if kind == "output" and p and os.path.isfile(p)]

    def fingerprint(self) -> str:
        """Extra cache-key material; default: sha256 of every ``InputFile`` param's contents."""
        h = hashlib.sha256()
        for name, kind, path in self.path_params():
            if kind == "input" and path and os.path.isfile(path):
                h.update(name.encode())
                h.update(file_digest(path).encode())
        return h.hexdigest()

    def path_params(self) -> Iterator[tuple[str, str, str]]:
        """(name, kind, value) for every path-typed param."""
        for name, info in type(self.params).model_fields.items():
            kind = path_kind(info)
            if kind is not None:
                yield name, kind, getattr(self.params, name)


class DatasetNode(Node):
    """A node that is a dataset. In ``nodegraph train`` each step's batch is fed as its outputs;
    in ``nodegraph run`` ``forward`` returns the first ``batch_size`` items (a preview batch).

    Subclasses implement ``dataset() -> torch.utils.data.Dataset`` whose items are dicts keyed
    by this node's output names (without the batch dimension).
    """

    cacheable = True

    def dataset(self) -> torch.utils.data.Dataset:
        raise NotImplementedError

    def forward(self, **inputs: Any) -> dict[str, Any]:
        ds = self.dataset()
        n = int(getattr(self.params, "batch_size", 1) or 1)
        items = [ds[i] for i in range(min(n, len(ds)))]
        return {k: torch.stack([it[k] for it in items]).to(self.device) for k in items[0]}


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's contents, memoised on (path, size, mtime)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    got = _DIGESTS.get(key)
    if got is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        got = _DIGESTS[key] = h.hexdigest()
    return got
