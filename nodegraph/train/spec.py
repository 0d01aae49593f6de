"""The ``train`` section of a graph file (schema + cross-checks against the graph).

A ``train`` section turns a graph into a trainable system (see docs/training.md)::

    "train": {
      "dataset": "data",
      "steps": 2000, "batch_size": 8, "seed": 0,
      "objectives": {
        "G": {"losses": {"g_gan.loss": 1, "l1.loss": 10}, "updates": ["gen"],
              "optimizer": {"type": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}},
        "D": {"losses": {"d_gan.loss": 1}, "updates": ["disc"],
              "optimizer": {"type": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}}
      },
      "schedule": {"type": "linear", "start": 1000},
      "checkpoint_every": 500, "sample_every": 100, "samples": ["data.image", "gen.image"],
      "export": {"gen": "tiny_cgan_G"}
    }

Objectives run in the order they are listed, each step. ``phases`` switch objectives or loss
weights by step (ranges and/or alternation: ``every``/``offset``). An objective may share
another's optimizer (``"optimizer": "D"``: a lazy regulariser stepping the same Adam every k
steps), and ``ema`` keeps moving averages of trained nodes' weights (``ema.py``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..graph import Graph, GraphError, Problem, parse_link


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptimizerSpec(_Strict):
    """torch.optim.Adam / AdamW / SGD with the usual hyper-parameters."""

    type: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, description="sgd only")
    nesterov: bool = False
    lazy_every: int | None = Field(
        None, ge=1, description="k: an objective sharing this optimizer runs every k steps (lazy "
        "regularisation); lr and betas become lr*c and beta**c with c = k/(k+1) (StyleGAN2 App. B)")

    def correction(self) -> float:
        """c = k / (k + 1) for ``lazy_every`` k, else 1: k main steps and one lazy step then move
        the weights as far as k + 1 plain steps would, with the same momentum horizon."""
        k = self.lazy_every
        return k / (k + 1) if k else 1.0

    def build(self, groups: list[dict[str, Any]]) -> Any:
        """The torch optimizer over ``groups`` (param groups, each with its own ``lr``; the lazy
        correction is already in their ``lr``, see :meth:`correction`)."""
        import torch

        if self.type == "sgd":
            return torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                                   nesterov=self.nesterov)
        cls = torch.optim.AdamW if self.type == "adamw" else torch.optim.Adam
        c = self.correction()
        betas = (float(self.betas[0]) ** c, float(self.betas[1]) ** c)
        return cls(groups, lr=self.lr, betas=betas, eps=self.eps, weight_decay=self.weight_decay)


class ScheduleSpec(_Strict):
    """Learning-rate factor as a function of the step.

    - ``constant``: 1.
    - ``linear``: 1 until ``start``, then linear decay reaching 0 at ``end`` (default: ``steps``).
    - ``step``: multiplied by ``gamma`` at each milestone (``milestones``) or every ``every`` steps.
    ``warmup`` (any type) ramps linearly from 0 over the first ``warmup`` steps.
    """

    type: Literal["constant", "linear", "step"] = "constant"
    start: int = Field(0, ge=0)
    end: int | None = Field(None, ge=1)
    every: int | None = Field(None, ge=1)
    milestones: list[int] = Field(default_factory=list)
    gamma: float = Field(0.1, gt=0)
    warmup: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ScheduleSpec:
        if self.type == "step" and not self.milestones and self.every is None:
            raise ValueError("a 'step' schedule needs 'milestones' or 'every'")
        return self

    def factor(self, step: int, total: int) -> float:
        f = 1.0
        if self.type == "linear":
            end = self.end if self.end is not None else total
            if step >= self.start:
                span = max(1, end - self.start)
                f = max(0.0, 1.0 - (step - self.start) / span)
        elif self.type == "step":
            if self.milestones:
                n = sum(1 for m in self.milestones if step >= m)
            else:
                n = step // int(self.every or 1)
            f = self.gamma ** n
        if self.warmup and step < self.warmup:
            f *= (step + 1) / self.warmup
        return f


class ObjectiveSpec(_Strict):
    """One optimisation problem: a weighted sum of loss outputs, minimised over some nodes' params."""

    losses: dict[str, float] = Field(..., min_length=1,
                                     description='"node.port" of a Scalar output -> weight')
    updates: list[str] = Field(..., min_length=1, description="nodes whose module() parameters it updates")
    optimizer: OptimizerSpec | str = Field(
        default_factory=OptimizerSpec, description="an optimizer, or the name of another objective whose "
        "optimizer (and its state) this one steps too (a lazy regulariser sharing the main Adam)")
    lr_mult: dict[str, float] = Field(default_factory=dict,
                                      description="per-node learning-rate multiplier (param groups)")
    schedule: ScheduleSpec | None = None
    clip_grad: float | None = Field(None, gt=0, description="max global grad norm (None: inherit)")
    every: int = Field(1, ge=1, description="run on steps where step % every == offset")
    offset: int = Field(0, ge=0)
    doc: str = Field("", description="why these weights / settings (sources, conventions)")


class EmaSpec(_Strict):
    """Moving average of one node's weights: ``half_life`` in training images, or ``decay`` per step."""

    half_life: float | None = Field(None, gt=0, description="images after which a step's weight in the "
                                    "average halves (StyleGAN2: 10,000); beta = 0.5 ** (batch / half_life)")
    decay: float | None = Field(None, ge=0, lt=1, description="beta per step")
    rampup: float | None = Field(None, gt=0, description="with half_life: the half-life is at most rampup x "
                                 "the images seen so far (StyleGAN2-ADA ema_rampup 0.05), so early averages "
                                 "do not drag the initial weights along")

    @model_validator(mode="after")
    def _one(self) -> EmaSpec:
        if (self.half_life is None) == (self.decay is None):
            raise ValueError("give exactly one of 'half_life' (images) or 'decay' (per step)")
        if self.rampup is not None and self.half_life is None:
            raise ValueError("'rampup' shortens a 'half_life'; give one")
        return self

    def beta(self, batch_size: int, step: int | None = None) -> float:
        """The decay applied after step ``step`` (0-based) for a global batch of ``batch_size``
        images; ``step`` None ignores the ramp-up."""
        if self.decay is not None:
            return self.decay
        half = float(self.half_life or 1)
        if self.rampup is not None and step is not None:
            half = min(half, (step + 1) * batch_size * self.rampup)
        return 0.5 ** (batch_size / half)


class PhaseSpec(_Strict):
    """Overrides active on some steps: ``from <= step < until`` and ``(step-from) % every == offset``."""

    name: str = ""
    from_: int = Field(0, ge=0, alias="from")
    until: int | None = Field(None, ge=1)
    every: int = Field(1, ge=1)
    offset: int = Field(0, ge=0)
    objectives: list[str] | None = Field(None, description="objectives that run (None: unchanged)")
    weights: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="objective -> {loss link: weight} (replaces those weights)")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def active(self, step: int) -> bool:
        if step < self.from_ or (self.until is not None and step >= self.until):
            return False
        return (step - self.from_) % self.every == self.offset % self.every


class TrainSpec(_Strict):
    """The ``train`` section; see the module doc and docs/training.md."""

    dataset: str | list[str] = Field(..., description="dataset node id(s) whose outputs each batch feeds")
    objectives: dict[str, ObjectiveSpec] = Field(..., min_length=1)
    phases: list[PhaseSpec] = Field(default_factory=list)
    steps: int = Field(1000, ge=1)
    batch_size: int | None = Field(None, ge=1, description="global batch (default: the dataset's batch_size)")
    seed: int = 0
    workers: int = Field(0, ge=0, description="DataLoader worker processes")
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    clip_grad: float | None = Field(None, gt=0)
    amp: Literal["bf16", "fp16"] | None = Field(None, description="mixed precision on CUDA")
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(3, ge=1)
    sample_every: int | None = Field(None, ge=1)
    samples: list[str] = Field(default_factory=list, description='"node.port" images/maps for sample grids')
    sample_count: int = Field(8, ge=1, le=64)
    metrics: list[str] = Field(default_factory=list, description='extra Scalar "node.port" to log')
    export: dict[str, str] = Field(default_factory=dict, description="node id -> weights name")
    ema: dict[str, EmaSpec] = Field(default_factory=dict, description="node id -> moving average of its "
                                    "weights (what samples show and export writes)")
    export_dir: str | None = Field(None, description="a weights folder to export into (default: RUN/export; "
                                   "--weights-dir overrides; replacing an entry needs --replace)")

    @field_validator("dataset")
    @classmethod
    def _ds(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError("name at least one dataset node")
        return v

    @property
    def datasets(self) -> list[str]:
        return [self.dataset] if isinstance(self.dataset, str) else list(self.dataset)

    @property
    def trained_nodes(self) -> list[str]:
        seen: list[str] = []
        for obj in self.objectives.values():
            for n in obj.updates:
                if n not in seen:
                    seen.append(n)
        return seen

    # ---- per-step views ------------------------------------------------------------------
    def plan(self, step: int) -> list[tuple[str, dict[str, float]]]:
        """Objectives that run at ``step`` (in order) with their effective loss weights."""
        active = [n for n, o in self.objectives.items() if step % o.every == o.offset % o.every]
        weights = {n: dict(o.losses) for n, o in self.objectives.items()}
        for ph in self.phases:
            if not ph.active(step):
                continue
            if ph.objectives is not None:
                active = [n for n in self.objectives if n in ph.objectives]
            for obj, ws in ph.weights.items():
                weights[obj].update(ws)
        return [(n, weights[n]) for n in active]


def parse_train(graph: Graph) -> TrainSpec:
    """The validated train section of ``graph`` (GraphError listing every problem)."""
    raw = graph.spec.train
    if raw is None:
        raise GraphError([Problem("train", "this graph has no 'train' section (see docs/training.md)")],
                         graph.source)
    try:
        spec = TrainSpec(**raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = "train." + ".".join(str(x) for x in err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (see docs/training.md for the train section schema)"
            problems.append(Problem(where, msg))
        raise GraphError(problems, graph.source) from None
    return spec


def check_train(graph: Graph, spec: TrainSpec, ports: dict[str, Any]) -> None:
    """Cross-check the train section against the graph's nodes and resolved port types."""
    from ..node import DatasetNode
    from ..types import Scalar

    nodes = graph.spec.nodes
    problems: list[Problem] = []

    def link(where: str, value: str, scalar: bool = False) -> None:
        src = parse_link(value)
        if src is None:
            problems.append(Problem(where, f"expected \"node.port\", got {value!r}"))
            return
        nid, port = src
        if nid not in nodes:
            problems.append(Problem(where, f"no node {nid!r} in the graph"))
            return
        outs = ports.get(nid, ({}, {}))[1]
        if port not in outs:
            problems.append(Problem(where, f"{nid} has no output {port!r} (outputs: {', '.join(outs) or 'none'})"))
        elif scalar and not isinstance(outs[port], Scalar):
            problems.append(Problem(where, f"{value} is {outs[port].describe()}, a loss must be a Scalar"))

    for ds in spec.datasets:
        if ds not in nodes:
            problems.append(Problem("train.dataset", f"no node {ds!r} in the graph"))
            continue
        try:
            cls = graph.node_class(ds)
        except KeyError:
            continue
        if not issubclass(cls, DatasetNode):
            problems.append(Problem("train.dataset", f"{ds} ({cls.type_name}) is not a dataset node"))
        elif nodes[ds].inputs:
            problems.append(Problem(f"{ds}", "a dataset node used for training must have no inputs"))
    for name, obj in spec.objectives.items():
        for lk in obj.losses:
            link(f"train.objectives.{name}.losses.{lk}", lk, scalar=True)
        for nid in list(obj.updates) + list(obj.lr_mult):
            if nid not in nodes:
                problems.append(Problem(f"train.objectives.{name}.updates", f"no node {nid!r} in the graph"))
            elif nid in spec.datasets:
                problems.append(Problem(f"train.objectives.{name}.updates", f"{nid} is the dataset node"))
    for i, ph in enumerate(spec.phases):
        for o in (ph.objectives or []) + list(ph.weights):
            if o not in spec.objectives:
                problems.append(Problem(f"train.phases.{i}", f"unknown objective {o!r} "
                                        f"(objectives: {', '.join(spec.objectives)})"))
        for o, ws in ph.weights.items():
            for lk in ws:
                if o in spec.objectives and lk not in spec.objectives[o].losses:
                    problems.append(Problem(f"train.phases.{i}.weights.{o}",
                                            f"{lk} is not a loss of objective {o} (list it there, weight 0)"))
    for lk in spec.samples:
        link("train.samples", lk)
    for lk in spec.metrics:
        link("train.metrics", lk, scalar=True)
    for nid in spec.export:
        if nid not in nodes:
            problems.append(Problem(f"train.export.{nid}", "no such node"))
        elif nid not in spec.trained_nodes:
            problems.append(Problem(f"train.export.{nid}", "this node is not updated by any objective"))
    for nid in spec.ema:
        if nid not in spec.trained_nodes:
            problems.append(Problem(f"train.ema.{nid}", "not a node updated by some objective"))
    problems += _shared_optimizer_problems(spec)
    if problems:
        raise GraphError(problems, graph.source)


def _shared_optimizer_problems(spec: TrainSpec) -> list[Problem]:
    """An objective naming another's optimizer: that one must own an optimizer and update every
    node this one does (its param groups are the shared ones)."""
    out = []
    for name, obj in spec.objectives.items():
        if not isinstance(obj.optimizer, str):
            continue
        where = f"train.objectives.{name}.optimizer"
        owner = spec.objectives.get(obj.optimizer)
        if owner is None or obj.optimizer == name:
            out.append(Problem(where, f"{obj.optimizer!r} is not another objective "
                               f"(objectives: {', '.join(spec.objectives)})"))
        elif isinstance(owner.optimizer, str):
            out.append(Problem(where, f"objective {obj.optimizer} shares an optimizer itself; name its owner "
                               f"{owner.optimizer!r}"))
        elif not set(obj.updates) <= set(owner.updates):
            out.append(Problem(f"train.objectives.{name}.updates", f"a shared optimizer only holds the nodes "
                               f"{obj.optimizer} updates ({', '.join(owner.updates)})"))
        elif obj.lr_mult:
            out.append(Problem(f"train.objectives.{name}.lr_mult", f"set it on {obj.optimizer}, whose "
                               "optimizer this objective shares"))
    return out
