"""Port types: small declared contracts checked at validation and on every produced output.

A port type is an *instance* (``Image()``, ``LabelMap("landscape")``, ``Tensor(rank=4)``) so
it can carry the parameters of its contract. ``compatible(upstream)`` answers at validation
time whether an edge may connect an output of type ``upstream`` to this input; ``check(value)``
runs on every value a node produces (cheap: dtype, rank, channels, range on request).

The engine knows no GAN, so label sets and attribute schemas are registered by the node library
(``register_label_set``, ``register_attribute_schema``) and only compared by name here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch


class PortError(ValueError):
    """A value does not honour its port's contract."""


@dataclass(frozen=True)
class LabelSet:
    """A named set of semantic classes: ``names[i]`` is the class with id ``i``.

    ``palette[i]`` is the RGB colour used to draw class ``i`` in a colour label map.
    """

    name: str
    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...] = ()
    ignore_index: int | None = None

    def __len__(self) -> int:
        return len(self.names)


_LABEL_SETS: dict[str, LabelSet] = {}


def register_label_set(label_set: LabelSet) -> LabelSet:
    """Make ``label_set`` known by name (idempotent for an identical set)."""
    old = _LABEL_SETS.get(label_set.name)
    if old is not None and old != label_set:
        raise ValueError(f"label set {label_set.name!r} is already registered differently")
    _LABEL_SETS[label_set.name] = label_set
    return label_set


def get_label_set(name: str) -> LabelSet:
    try:
        return _LABEL_SETS[name]
    except KeyError:
        known = ", ".join(sorted(_LABEL_SETS)) or "none"
        raise KeyError(f"unknown label set {name!r} (known: {known})") from None


def label_set_names() -> list[str]:
    return sorted(_LABEL_SETS)


@dataclass(frozen=True)
class AttributeSchema:
    """A named attribute-vector layout: ``names[i]`` is entry ``i``; ``subsets`` name column sets
    (e.g. ``shape`` / ``non_shape``) a node may take instead of the whole vector."""

    name: str
    names: tuple[str, ...]
    subsets: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, name: str | None) -> tuple[int, ...]:
        """Column indices of subset ``name`` (None or 'all': every column)."""
        if name in (None, "all"):
            return tuple(range(len(self.names)))
        for n, idx in self.subsets:
            if n == name:
                return idx
        known = ", ".join(n for n, _ in self.subsets) or "none"
        raise KeyError(f"attribute schema {self.name!r} has no subset {name!r} (subsets: {known})")

    def size(self, subset: str | None = None) -> int:
        return len(self.subset(subset))


_ATTRIBUTE_SCHEMAS: dict[str, AttributeSchema] = {}


def register_attribute_schema(schema: AttributeSchema) -> AttributeSchema:
    """Make ``schema`` known by name (idempotent for an identical schema)."""
    old = _ATTRIBUTE_SCHEMAS.get(schema.name)
    if old is not None and old != schema:
        raise ValueError(f"attribute schema {schema.name!r} is already registered differently")
    _ATTRIBUTE_SCHEMAS[schema.name] = schema
    return schema


def get_attribute_schema(name: str) -> AttributeSchema:
    try:
        return _ATTRIBUTE_SCHEMAS[name]
    except KeyError:
        known = ", ".join(sorted(_ATTRIBUTE_SCHEMAS)) or "none"
        raise KeyError(f"unknown attribute schema {name!r} (known: {known})") from None


def attribute_schema_names() -> list[str]:
    return sorted(_ATTRIBUTE_SCHEMAS)


@dataclass(frozen=True)
class PortType:
    """Base of every port type. ``optional`` and ``requires_grad`` only matter for inputs.

    ``requires_grad=True`` declares that the node differentiates with respect to this input
    (``torch.autograd.grad(out, input, create_graph=True)``, e.g. an R1 penalty on real data).
    In ``nodegraph train`` the engine then hands the node an input that carries a gradient: a
    value that does not already (a data batch, a frozen node's output) is replaced by a leaf
    tensor that requires grad, and every node between that source and this one runs with
    autograd on the same leaf (docs/training.md, "Gradients with respect to data").
    """

    optional: bool = field(default=False, kw_only=True)
    doc: str = field(default="", kw_only=True)
    requires_grad: bool = field(default=False, kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__

    def describe(self) -> str:
        return self.kind

    def compatible(self, upstream: PortType) -> str | None:
        """None when an output of type ``upstream`` may feed this input, else the reason."""
        if type(upstream) is not type(self) and not isinstance(self, Any_):
            return f"type mismatch: {upstream.describe()} cannot feed {self.describe()}"
        return None

    def check(self, value: Any) -> None:
        """Raise PortError when ``value`` breaks the contract."""

    def with_(self, **changes: Any) -> PortType:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind, "describe": self.describe()}
        if self.optional:
            out["optional"] = True
        if self.requires_grad:
            out["requires_grad"] = True
        if self.doc:
            out["doc"] = self.doc
        return out


def _tensor(value: Any, kind: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise PortError(f"expected a torch.Tensor for {kind}, got {type(value).__name__}")
    return value


def _rank(t: torch.Tensor, rank: int, kind: str, layout: str) -> None:
    if t.dim() != rank:
        raise PortError(f"{kind} must be rank {rank} ({layout}), got shape {tuple(t.shape)}")


RANGE_CHUNKS, RANGE_CHUNK = 64, 256
RANGE_SAMPLE = RANGE_CHUNKS * RANGE_CHUNK


def _range(t: torch.Tensor, lo: float, hi: float, kind: str, tol: float = 1e-4) -> None:
    """Range (and NaN/Inf) check on a sample: 64 evenly spaced runs of 256 contiguous elements.

    A node that works in the wrong range (e.g. [-1, 1]) or blows up does so across the image,
    so a sample catches it at a fraction of a full pass over a large tensor; contiguous runs
    touch 1/16 of the memory an element-strided sample of the same size would.
    """
    if t.numel() == 0:
        return
    flat = t.reshape(-1)
    n = flat.numel()
    if n > RANGE_SAMPLE:
        step = n // RANGE_CHUNKS
        flat = flat[: step * RANGE_CHUNKS].view(RANGE_CHUNKS, step)[:, :RANGE_CHUNK]
    if flat.device.type == "cpu":
        # numpy on the sample: torch's intra-op pool costs more than the reduction at this size
        arr = flat.detach().float().numpy()
        mn, mx = float(arr.min()), float(arr.max())
    else:
        mn, mx = (float(v) for v in torch.aminmax(flat.float()))
    if mn != mn or mx != mx or mn in (float("inf"), float("-inf")) or mx in (float("inf"), float("-inf")):
        raise PortError(f"{kind} contains NaN or Inf")
    if mn < lo - tol or mx > hi + tol:
        raise PortError(f"{kind} values must lie in [{lo}, {hi}], got [{mn:.4g}, {mx:.4g}]")


@dataclass(frozen=True)
class Image(PortType):
    """float32 RGB, N x 3 x H x W, values in [0, 1]."""

    channels: int = 3
    check_range: bool = True

    def describe(self) -> str:
        return f"Image[{self.channels}ch, 0..1]"

    def compatible(self, upstream: PortType) -> str | None:
        if isinstance(upstream, Image):
            if upstream.channels != self.channels:
                return f"channel mismatch: {upstream.describe()} cannot feed {self.describe()}"
            return None
        return super().compatible(upstream)

    def check(self, value: Any) -> None:
        t = _tensor(value, "Image")
        _rank(t, 4, "Image", "N x C x H x W")
        if not t.is_floating_point():
            raise PortError(f"Image must be floating point, got {t.dtype}")
        if t.shape[1] != self.channels:
            raise PortError(f"Image must have {self.channels} channels, got {t.shape[1]}")
        if self.check_range and not t.requires_grad:
            _range(t.detach(), 0.0, 1.0, "Image", tol=1e-3)


@dataclass(frozen=True)
class LabelMap(PortType):
    """int64 N x H x W class ids of a named label set (None = any set, decided upstream)."""

    label_set: str | None = None

    def describe(self) -> str:
        return f"LabelMap[{self.label_set or 'any'}]"

    def compatible(self, upstream: PortType) -> str | None:
        if isinstance(upstream, LabelMap):
            if self.label_set and upstream.label_set and upstream.label_set != self.label_set:
                return (
                    f"label-set mismatch: the map uses {upstream.label_set!r} "
                    f"but this input wants {self.label_set!r}"
                )
            return None
        return super().compatible(upstream)

    def check(self, value: Any) -> None:
        t = _tensor(value, "LabelMap")
        _rank(t, 3, "LabelMap", "N x H x W")
        if t.dtype != torch.int64:
            raise PortError(f"LabelMap must be int64, got {t.dtype}")
        if self.label_set and self.label_set in _LABEL_SETS and t.numel():
            n = len(_LABEL_SETS[self.label_set])
            ignore = _LABEL_SETS[self.label_set].ignore_index
            bad = (t < 0) | (t >= n)
            if ignore is not None:
                bad &= t != ignore
            if bool(bad.any()):
                raise PortError(
                    f"LabelMap ids must lie in 0..{n - 1} for label set {self.label_set!r}, "
                    f"got range {int(t.min())}..{int(t.max())}"
                )


@dataclass(frozen=True)
class Mask(PortType):
    """float N x 1 x H x W in [0, 1]."""

    def check(self, value: Any) -> None:
        t = _tensor(value, "Mask")
        _rank(t, 4, "Mask", "N x 1 x H x W")
        if t.shape[1] != 1:
            raise PortError(f"Mask must have 1 channel, got {t.shape[1]}")
        if not t.requires_grad:
            _range(t.detach(), 0.0, 1.0, "Mask", tol=1e-3)


@dataclass(frozen=True)
class Latent(PortType):
    """StyleGAN codes: ``W`` (N x D) or ``W+`` (N x L x D); space None accepts both."""

    space: str | None = None
    dim: int = 512

    def describe(self) -> str:
        return f"Latent[{self.space or 'W|W+'}, {self.dim}]"

    def compatible(self, upstream: PortType) -> str | None:
        if isinstance(upstream, Latent):
            if self.space and upstream.space and self.space != upstream.space:
                return f"latent space mismatch: {upstream.describe()} cannot feed {self.describe()}"
            return None
        return super().compatible(upstream)

    def check(self, value: Any) -> None:
        t = _tensor(value, "Latent")
        want = {"W": (2,), "W+": (3,), None: (2, 3)}[self.space]
        if t.dim() not in want or t.shape[-1] != self.dim:
            raise PortError(f"{self.describe()} got shape {tuple(t.shape)}")


@dataclass(frozen=True)
class Attributes(PortType):
    """float N x K attribute vectors of a named schema (registered by the node library).

    ``subset`` names a column subset of the schema (None: the whole vector). An input that wants a
    subset accepts the whole vector (the node picks its columns) or that subset, never another one.
    """

    schema: str | None = None
    size: int | None = None
    subset: str | None = None

    def describe(self) -> str:
        name = self.schema or "any"
        return f"Attributes[{name}/{self.subset}]" if self.subset else f"Attributes[{name}]"

    def compatible(self, upstream: PortType) -> str | None:
        if isinstance(upstream, Attributes):
            if self.schema and upstream.schema and self.schema != upstream.schema:
                return f"attribute schema mismatch: {upstream.schema!r} vs {self.schema!r}"
            if self.subset and upstream.subset and self.subset != upstream.subset:
                return (f"attribute subset mismatch: a {upstream.subset!r} vector cannot feed an input that wants "
                        f"{self.subset!r} (wire the full {self.schema or ''} vector or its {self.subset!r} subset)")
            return None
        return super().compatible(upstream)

    def check(self, value: Any) -> None:
        t = _tensor(value, "Attributes")
        _rank(t, 2, "Attributes", "N x K")
        if self.size is not None and t.shape[1] != self.size:
            raise PortError(f"Attributes must have {self.size} entries, got {t.shape[1]}")
        schema = _ATTRIBUTE_SCHEMAS.get(self.schema or "")
        if schema is not None and self.size is None:
            ok = {len(schema)} | ({schema.size(self.subset)} if self.subset else set())
            if t.shape[1] not in ok:
                raise PortError(f"{self.describe()} must have {' or '.join(map(str, sorted(ok)))} entries, "
                                f"got {t.shape[1]}")


@dataclass(frozen=True)
class Model(PortType):
    """A live ``torch.nn.Module`` handle; ``family`` narrows which (e.g. 'stylegan2')."""

    family: str | None = None

    def describe(self) -> str:
        return f"Model[{self.family or 'any'}]"

    def compatible(self, upstream: PortType) -> str | None:
        if isinstance(upstream, Model):
            if self.family and upstream.family and self.family != upstream.family:
                return f"model family mismatch: {upstream.family!r} vs {self.family!r}"
            return None
        return super().compatible(upstream)

    def check(self, value: Any) -> None:
        if not isinstance(value, torch.nn.Module):
            raise PortError(f"Model must be a torch.nn.Module, got {type(value).__name__}")


@dataclass(frozen=True)
class Scalar(PortType):
    """0-d tensor (a loss, a metric)."""

    def check(self, value: Any) -> None:
        t = _tensor(value, "Scalar")
        if t.dim() != 0:
            raise PortError(f"Scalar must be 0-d, got shape {tuple(t.shape)}")


@dataclass(frozen=True)
class Tensor(PortType):
    """Any other tensor; ``rank`` None means any rank."""

    rank: int | None = None

    def describe(self) -> str:
        return f"Tensor[rank {self.rank}]" if self.rank is not None else "Tensor"

    def compatible(self, upstream: PortType) -> str | None:
        # A Tensor input accepts every tensor-valued port whose rank fits.
        if isinstance(upstream, Model):
            return f"type mismatch: {upstream.describe()} cannot feed {self.describe()}"
        up_rank = getattr(upstream, "rank", None)
        if isinstance(upstream, Tensor) and self.rank is not None and up_rank is not None:
            if up_rank != self.rank:
                return f"rank mismatch: {upstream.describe()} cannot feed {self.describe()}"
        return None

    def check(self, value: Any) -> None:
        t = _tensor(value, "Tensor")
        if self.rank is not None and t.dim() != self.rank:
            raise PortError(f"Tensor must be rank {self.rank}, got shape {tuple(t.shape)}")


@dataclass(frozen=True)
class Any_(PortType):
    """Accepts any value (pass-through utility nodes)."""

    def describe(self) -> str:
        return "Any"

    def compatible(self, upstream: PortType) -> str | None:
        return None


PORT_TYPES: dict[str, type[PortType]] = {
    c.__name__: c for c in (Image, LabelMap, Mask, Latent, Attributes, Model, Scalar, Tensor, Any_)
}
