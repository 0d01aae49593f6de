"""``nodegraph train G``: optimise the trainable nodes of a graph end to end.

The graph's ``train`` section (schema: ``spec.py``, guide: docs/training.md) names a
dataset node, objectives (weighted loss outputs, the nodes whose parameters each updates, an
optimizer) and bookkeeping. Each step feeds one batch as the dataset node's outputs, then runs
the objectives in order; grad mode per node is inferred (``exec.py``). Checkpoints hold
params, optimizer, scheduler, AMP scaler and RNG state (``ckpt.py``); under ``torchrun``
every rank trains on its slice of the global batch and gradients are averaged (``data.py``).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import networkx as nx
import torch

from ..events import EventBus, JsonlSink
from ..executor import pick_device
from ..graph import Graph, GraphError, Problem, load_graph, parse_link
from ..node import Context, DatasetNode, Node, NodeError
from . import ckpt
from .data import GracefulStop, StreamSampler, derive_seed, init_dist, make_loader, seed_everything
from .ema import EMA
from .exec import StepGraph
from .export import check_replace, export_dir, export_trained, graph_label
from .log import Progress, sample_grid
from .optim import build_optimizers, owner
from .spec import TrainSpec, check_train, parse_train


class TrainError(NodeError):
    """Training had to stop (non-finite loss, incompatible checkpoint, ...)."""


@dataclass
class TrainResult:
    step: int
    run_dir: Path
    losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    exported: dict[str, Path] = field(default_factory=dict)
    checkpoint: Path | None = None
    interrupted: bool = False


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


class Trainer:
    """One training run of one graph (see module doc). ``run()`` does the work."""

    def __init__(self, graph: Graph, *, steps: int | None = None, run_dir: str | Path | None = None,
                 resume: bool = False, log: str | Path | None = None, device: str | None = None,
                 export: bool = True, debug: bool = False, command: str | None = None,
                 progress: bool = True, weights_dir: str | Path | None = None, replace: bool = False) -> None:
        self.ports = graph.check()
        self.graph = graph
        self.spec: TrainSpec = parse_train(graph)
        if steps is not None:
            self.spec.steps = steps
        check_train(graph, self.spec, self.ports)
        self.dist, self.device = init_dist(pick_device(device))
        self.run_dir = Path(run_dir) if run_dir else Path("runs") / graph.name
        self.resume, self.do_export, self.debug = resume, export, debug
        # exports go to RUN/export unless a weights folder is named; replacing needs `replace`,
        # checked now rather than after hours of training
        self.export_dir, self.replace = export_dir(self.run_dir, weights_dir, self.spec.export_dir), replace
        if export and self.spec.export:
            check_replace(self.export_dir, list(self.spec.export.values()), replace, self.run_dir)
        self.command = command or f"nodegraph.train.train({graph.source!r}, steps={steps}) (Python API)"
        self.bus = EventBus()
        self.bus.keep_history = False
        self._log_sink = JsonlSink(log) if (log and self.dist.main) else None
        if self._log_sink:
            self.bus.add(self._log_sink)
        self.progress_enabled = progress and self.dist.main
        self._warned: set[str] = set()
        self.graph_hash = ckpt.canonical_hash(graph.spec.model_dump(exclude={"layout"}))
        self._build()

    # ---- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        spec, g = self.spec, self.graph
        links = list(spec.samples) + list(spec.metrics)
        for obj in spec.objectives.values():
            links += list(obj.losses)
        targets = {parse_link(lk)[0] for lk in links} | set(spec.trained_nodes) | set(spec.datasets)  # type: ignore[index]
        nxg = g.nx_graph()
        need: set[str] = set()
        for t in targets:
            need |= {t} | nx.ancestors(nxg, t)
        self.nodes: dict[str, Node] = {}
        for nid in nx.topological_sort(nxg):
            if nid not in need:
                continue
            cls = g.node_class(nid)
            ctx = Context(device=self.device, emit=self.bus.emit, node_id=nid, base_dir=g.base_dir,
                          training=True)
            if hasattr(ctx, "input_types"):
                ctx.input_types = dict(self.ports[nid][0])
            node = cls(g.params_for(nid), ctx)
            # each node's init draws from its own seed: adding a node elsewhere changes nothing here
            seed_everything(derive_seed("init", self.spec.seed, nid))
            node.ensure_setup()
            self.nodes[nid] = node
        trained = set(spec.trained_nodes)
        for nid, node in self.nodes.items():
            mod = node.module()
            if nid in trained:
                if mod is None:
                    raise TrainError(f"train: {nid} ({node.type_name}) is listed in 'updates' but owns no "
                                     "trainable module (its module() returned None)", nid)
                mod.to(self.device).train()
                self.dist.broadcast_module(mod)
            elif mod is not None:
                mod.eval().requires_grad_(False)
        try:
            self.optims, self.params = build_optimizers(spec, self.nodes)
        except NodeError as e:
            raise TrainError(str(e), e.node) from None
        self.ema = EMA({nid: self.nodes[nid].module() for nid in spec.ema}, spec.ema,  # type: ignore[misc]
                       self._global_batch()) if spec.ema else None
        amp = None
        self.scalers: dict[str, Any] = {}
        if spec.amp and self.device.type == "cuda":
            dtype = torch.bfloat16 if spec.amp == "bf16" else torch.float16
            amp = lambda: torch.autocast("cuda", dtype=dtype)  # noqa: E731
            if spec.amp == "fp16":
                self.scalers = {n: torch.amp.GradScaler("cuda") for n in spec.objectives}
        elif spec.amp:
            self._warn(f"train.amp={spec.amp} ignored on {self.device.type} (mixed precision needs CUDA)")
        self.runner = StepGraph(g, self.nodes, self.ports, spec.datasets, trained, amp=amp,
                                check_every_step=self.debug)
        self.grad_sets = {n: self.runner.grad_set(o.updates) for n, o in spec.objectives.items()}

    def _global_batch(self) -> int:
        """The global batch of the first dataset (images per step, for EMA half-lives)."""
        node = self.nodes[self.spec.datasets[0]]
        return self.spec.batch_size or int(getattr(node.params, "batch_size", 1) or 1)

    def _loaders(self, start: int) -> dict[str, Any]:
        out = {}
        for i, ds_id in enumerate(self.spec.datasets):
            node = self.nodes[ds_id]
            assert isinstance(node, DatasetNode)
            ds = node.dataset()
            bs = self.spec.batch_size or int(getattr(node.params, "batch_size", 1) or 1)
            if bs % self.dist.world:
                raise TrainError(f"train.batch_size={bs} must be divisible by the number of processes "
                                 f"({self.dist.world})", ds_id)
            self.batch_size = bs
            sampler = StreamSampler(len(ds), bs, derive_seed("data", self.spec.seed, i), start,
                                    self.dist.rank, self.dist.world)
            out[ds_id] = make_loader(ds, sampler, self.spec.workers, self.device.type == "cuda",
                                     self.spec.seed + i)
        return out

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        start = self._maybe_resume()
        spec = self.spec
        self.loaders = self._loaders(start)
        if self.dist.main:  # what this training uses, for `nodegraph replay` (nodegraph.lock)
            from ..lock import train_lock, write_lock

            write_lock(train_lock(self, start), self.run_dir / "run.lock.json")
        result = TrainResult(step=start, run_dir=self.run_dir)
        self._window: dict[str, list[float]] = {}
        self._mwindow: dict[str, list[float]] = {}
        self.bus.emit("train_start", step=start, steps=spec.steps, world=self.dist.world,
                      device=str(self.device), graph=self.graph.source, command=self.command,
                      params={n: sum(p.numel() for p in ps) for n, ps in self.params.items()})
        prog = Progress(spec.steps, start, enabled=self.progress_enabled)
        try:
            with GracefulStop(self.dist, self.device) as stop:
                step = self._loop(start, prog, stop, result)
        finally:
            prog.close()
        result.losses = {k: _mean(v) for k, v in self._window.items()} or self._last_losses
        result.metrics = {k: _mean(v) for k, v in self._mwindow.items()}
        if result.interrupted:
            self.bus.emit("train_end", step=step, reason="interrupted")
            if self.dist.main:
                prog.log(f"interrupted at step {step}; checkpoint saved in {ckpt.ckpt_dir(self.run_dir)} "
                         "(continue with --resume)")
            return result
        if self.do_export and spec.export:
            result.exported = self.export(step, result)
        self.bus.emit("train_end", step=step, reason="done", losses=result.losses)
        return result

    def _loop(self, start: int, prog: Progress, stop: GracefulStop, result: TrainResult) -> int:
        spec, step = self.spec, start
        while step < spec.steps:
            self._step(step)
            step += 1
            result.step = step
            if step % spec.log_every == 0 or step == spec.steps:
                self._log(step, prog)
            if spec.sample_every and step % spec.sample_every == 0:
                self._samples(step)
            if stop.agreed():
                result.interrupted = True
                break
            if step % spec.checkpoint_every == 0 and step < spec.steps:
                self._checkpoint(step)
        if step > start or not ckpt.list_checkpoints(self.run_dir):
            result.checkpoint = self._checkpoint(step)
        return step

    def _step(self, step: int) -> None:
        seed_everything(derive_seed("step", self.spec.seed, step, self.dist.rank))
        batches = {}
        for ds_id, it in self.loaders.items():
            batch = _to(next(it), self.device)
            if step == self._start or self.debug:
                self._check_batch(ds_id, batch)
            batches[ds_id] = batch
        self.runner.begin_step(batches)
        self._losses = {}
        for name, weights in self.spec.plan(step):
            self._objective(step, name, weights)
        if self.ema is not None:
            self.ema.update(step)
        for k, v in self._losses.items():
            self._window.setdefault(k, []).append(v)
        self._last_losses = dict(self._losses)

    def _check_batch(self, ds_id: str, batch: Any) -> None:
        node = self.nodes[ds_id]
        outs = self.ports[ds_id][1]
        if not isinstance(batch, dict):
            raise TrainError(f"{ds_id}: dataset items must be dicts keyed by output names "
                             f"({', '.join(outs)}), got {type(batch).__name__}", ds_id)
        extra = [k for k in batch if k not in outs]
        if extra:
            raise TrainError(f"{ds_id}: dataset items have keys {extra} that are not outputs of "
                             f"{node.type_name} (outputs: {', '.join(outs)})", ds_id)
        node.check_outputs(batch, outs, ds_id)

    def _objective(self, step: int, name: str, weights: dict[str, float]) -> None:
        obj = self.spec.objectives[name]
        active = {lk: w for lk, w in weights.items() if w != 0}
        if not active:
            return
        targets = {parse_link(lk)[0] for lk in active}  # type: ignore[index]
        vals = self.runner.evaluate(targets, self.grad_sets[name])
        terms = []
        for lk in active:
            nid, port = parse_link(lk)  # type: ignore[misc]
            terms.append(vals[nid][port])
        total = sum(w * t.float() for w, t in zip(active.values(), terms, strict=True))
        assert isinstance(total, torch.Tensor)
        stats = torch.stack([t.detach().float().reshape(()) for t in terms] + [total.detach().reshape(())])
        self.dist.mean_(stats)
        values = stats.tolist()
        if not all(math.isfinite(v) for v in values):
            self._non_finite(step, name, dict(zip(active, values, strict=False)), values[-1])
        for lk, v in zip(active, values, strict=False):
            self._losses[lk] = v
        self._losses[name] = values[-1]
        self._update(step, name, obj, total)

    def _non_finite(self, step: int, name: str, terms: dict[str, float], total: float) -> None:
        bad = {lk: v for lk, v in terms.items() if not math.isfinite(v)}
        node = parse_link(next(iter(bad)))[0] if bad else name  # type: ignore[index]
        detail = ", ".join(f"{lk}={v}" for lk, v in bad.items()) or f"weighted total={total}"
        last = ckpt.list_checkpoints(self.run_dir)
        keep = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was written yet"
        raise TrainError(f"non-finite loss at step {step} in objective {name}: {detail} (node {node}); "
                         f"training stopped, {keep}. Try a lower learning rate, gradient clipping "
                         "(train.clip_grad) or check the data.", node)

    def _update(self, step: int, name: str, obj: Any, total: torch.Tensor) -> None:
        opt, params = self.optims[owner(self.spec, name)], self.params[name]
        scaler = self.scalers.get(name)
        opt.zero_grad(set_to_none=True)
        if not total.requires_grad:  # the same on every rank: the graph decides it
            if name not in self._warned:
                self._warned.add(name)
                self._warn(f"objective {name}: its losses do not depend on the parameters of "
                           f"{', '.join(obj.updates)}; nothing to optimise")
            return
        # inputs=: only this objective's parameters accumulate gradient (the G loss flows
        # through D into G, and leaves D's .grad untouched)
        (scaler.scale(total) if scaler else total).backward(inputs=params)
        self.dist.average_grads(params)
        if scaler:
            scaler.unscale_(opt)
        clip = obj.clip_grad or self.spec.clip_grad
        if clip:
            torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], clip)
        factor = (obj.schedule or self.spec.schedule).factor(step, self.spec.steps)
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * factor
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()

    # ---- logging, samples ----------------------------------------------------------------------
    def _log(self, step: int, prog: Progress) -> None:
        metrics = {}
        if self.spec.metrics:
            targets = {parse_link(lk)[0] for lk in self.spec.metrics}  # type: ignore[index]
            vals = self.runner.evaluate(targets, set())
            for lk in self.spec.metrics:
                nid, port = parse_link(lk)  # type: ignore[misc]
                metrics[lk] = float(self.dist.mean_(vals[nid][port].detach().float().reshape(1).clone()))
                self._mwindow[lk] = (self._mwindow.get(lk, []) + [metrics[lk]])[-10:]
        losses = {k: _mean(v[-self.spec.log_every:]) for k, v in self._window.items()}
        rate = prog.update(step, {k: v for k, v in losses.items() if k in self.spec.objectives} or losses)
        lrs = {n: o.param_groups[0]["lr"] for n, o in self.optims.items()}
        self.bus.emit("step", step=step, losses=losses, metrics=metrics, lr=lrs, it_s=round(rate, 3))
        self._window = {k: v[-self.spec.log_every:] for k, v in self._window.items()}

    def _samples(self, step: int) -> None:
        if not self.spec.samples or not self.dist.main:
            return
        targets = {parse_link(lk)[0] for lk in self.spec.samples}  # type: ignore[index]
        if self.ema is not None:  # samples show the averaged weights: recompute what depends on them
            self.runner.forget(self.spec.ema)
            with self.ema.applied():
                vals = self.runner.evaluate(targets, set())
            self.runner.forget(self.spec.ema)
        else:
            vals = self.runner.evaluate(targets, set())
        cols = []
        for lk in self.spec.samples:
            nid, port = parse_link(lk)  # type: ignore[misc]
            cols.append((vals[nid][port], self.ports[nid][1][port]))
        path = sample_grid(cols, self.spec.sample_count, self.run_dir / "samples" / f"step_{step:08d}.png")
        if path:
            self.bus.emit("sample", step=step, path=str(path))

    def _warn(self, message: str) -> None:
        self.bus.emit("warning", message=message)
        if self.dist.main:
            click.echo(f"warning: {message}", err=True)

    # ---- checkpoints ----------------------------------------------------------------------------
    def _checkpoint(self, step: int) -> Path | None:
        if not self.dist.main:
            self.dist.barrier()
            return None
        tensors, meta = ckpt.pack(self._trained_modules(), self.optims, self._opt_types(), self.scalers)
        if self.ema is not None:
            tensors.update(self.ema.state())
            meta["ema"] = {nid: beta for nid, beta in self.ema.beta.items()}
        for nid, node in self.nodes.items():  # running statistics of regularisers etc.
            for k, v in node.train_state().items():
                tensors[f"state/{nid}/{k}"] = v.detach().cpu().contiguous()
        spec = self.spec
        meta.update({
            "format": 1, "graph_hash": self.graph_hash,
            "graph": self.graph.spec.model_dump(mode="json", exclude={"layout"}),
            "schedule": {n: {"factor": (o.schedule or spec.schedule).factor(step, spec.steps),
                             "spec": (o.schedule or spec.schedule).model_dump()}
                         for n, o in spec.objectives.items()},
            "losses": dict(self._last_losses), "world": self.dist.world,
            "batch_size": getattr(self, "batch_size", None), "seed": spec.seed,
            "command": self.command, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
        path = ckpt.save(self.run_dir, step, tensors, meta, keep=spec.keep_checkpoints)
        self.bus.emit("checkpoint", step=step, path=str(path))
        self.dist.barrier()
        return path

    def _trained_modules(self) -> dict[str, torch.nn.Module]:
        return {nid: self.nodes[nid].module() for nid in self.spec.trained_nodes}  # type: ignore[misc]

    def _opt_types(self) -> dict[str, str]:
        return {n: self.spec.objectives[n].optimizer.type for n in self.optims}  # type: ignore[union-attr]

    def _maybe_resume(self) -> int:
        found = ckpt.list_checkpoints(self.run_dir)
        self._start = 0
        self._last_losses: dict[str, float] = {}
        if not self.resume:
            if found:
                raise click.UsageError(f"run dir {self.run_dir} already holds checkpoints (newest: "
                                       f"{found[-1].name}); pass --resume to continue it, or --run-dir "
                                       "to start a new run elsewhere")
            return 0
        if not found:
            self._warn(f"--resume: no checkpoint in {ckpt.ckpt_dir(self.run_dir)}; starting from step 0")
            return 0
        for path in reversed(found):  # a damaged newest file falls back to the one before
            try:
                tensors, meta = ckpt.load(path)
                break
            except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is skipped, loudly
                self._warn(f"cannot read checkpoint {path} ({e}); trying the previous one")
        else:
            raise TrainError(f"--resume: no readable checkpoint in {ckpt.ckpt_dir(self.run_dir)}")
        found = found[:found.index(path) + 1]
        problems = ckpt.unpack(self._trained_modules(), self.optims, self._opt_types(), self.scalers,
                               tensors, meta)
        if problems:
            raise GraphError([Problem(w, m) for w, m in problems],
                             f"cannot resume from {found[-1]}: the graph changed in a way the checkpoint "
                             "cannot follow (start a new --run-dir instead)")
        for mod in self._trained_modules().values():
            self.dist.broadcast_module(mod)
        for nid in self.ema.load(tensors) if self.ema is not None else []:
            self._warn(f"train.ema.{nid}: the checkpoint holds no average of these weights; it restarts "
                       "from the resumed weights")
        self._load_node_states(tensors)
        current = self.graph.spec.model_dump(mode="json", exclude={"layout"})
        if meta.get("graph_hash") != self.graph_hash:
            self._warn(f"the graph changed since the checkpoint ({ckpt.graph_diff(meta.get('graph', {}), current)})"
                       "; resuming anyway")
        self._start = int(meta["step"])
        self._last_losses = meta.get("losses", {})
        if self.dist.main:
            click.echo(f"resuming from {found[-1]} (step {self._start})", err=True)
        return self._start

    def _load_node_states(self, tensors: dict[str, torch.Tensor]) -> None:
        """Hand each node the ``state/<node>/...`` tensors of the checkpoint (Node.train_state)."""
        for nid, node in self.nodes.items():
            prefix = f"state/{nid}/"
            got = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            if got:
                node.ensure_setup()
                node.load_train_state(got)
            elif node.train_state():
                self._warn(f"{nid}: the checkpoint holds no state for this node ({', '.join(node.train_state())}); "
                           "it starts afresh")

    # ---- export --------------------------------------------------------------------------------
    def export(self, step: int, result: TrainResult) -> dict[str, Path]:
        """Write the ``export`` nodes' weights with provenance (rank 0 only)."""
        if not self.dist.main:
            return {}
        spec = self.spec
        prov = {"command": self.command, "graph": graph_label(self.graph.path, self.graph.name),
                "graph_sha256": self.graph_hash,
                "data": [{"node": d, "type": self.nodes[d].type_name,
                          "params": self.nodes[d].params.model_dump(mode="json")} for d in spec.datasets],
                "steps": step, "batch_size": getattr(self, "batch_size", None), "seed": spec.seed,
                "world_size": self.dist.world, "device": str(self.device)}
        if self.ema is not None:  # export writes the averaged weights of these nodes
            prov["ema"] = {nid: dict(e.model_dump(exclude_none=True), beta=self.ema.beta[nid])
                           for nid, e in spec.ema.items()}
        with self.ema.applied() if self.ema is not None else contextlib.nullcontext():
            out = self._export_files(prov, result)
        for name, path in out.items():
            self.bus.emit("export", name=name, path=str(path))
        return out

    def _export_files(self, prov: dict[str, Any], result: TrainResult) -> dict[str, Path]:
        spec = self.spec
        out = export_trained(self.nodes, spec.export, directory=self.export_dir, replace=self.replace,
                             provenance=prov, objectives={n: o.updates for n, o in spec.objectives.items()},
                             losses=result.losses, metrics=result.metrics)
        return out

    def close(self) -> None:
        if self._log_sink:
            self._log_sink.close()


def _mean(v: list[float]) -> float:
    return sum(v) / len(v) if v else float("nan")


def train(graph: Graph | str | Path, overrides: dict[str, Any] | list[str] | None = None, **kwargs: Any
          ) -> TrainResult:
    """Python API: ``nodegraph.train.train("graphs/x.json", steps=100, run_dir="runs/x")``."""
    if not isinstance(graph, Graph):
        graph = load_graph(graph)
    graph = graph.with_overrides(overrides)
    for note in graph.notes:
        print(f"note: {note}", file=sys.stderr)
    trainer = Trainer(graph, **kwargs)
    try:
        return trainer.run()
    finally:
        trainer.close()

