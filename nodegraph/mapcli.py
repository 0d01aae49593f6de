"""``nodegraph run G --over ...`` and graphs with a ``sweep`` section: the command-line side of
``nodegraph.mapper`` (sinks, summary, exit status)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .events import EventBus, JsonlSink
from .graph import Graph
from .mapper import MapJob
from .over import DEFAULT_PATTERN, combine, parse_over


def over_items(specs: tuple[str, ...], product: bool) -> list[dict[str, Any]]:
    return combine([parse_over(s) for s in specs], "product" if product else "zip")


def run_job(work: Any, log_path: str | None, quiet: bool) -> tuple[dict[str, Any], Any]:
    """Call ``work(bus)`` with the CLI's sinks on the bus; returns the ``map_end`` event (counts,
    seconds, index) and what ``work`` returned."""
    from .mapview import MapProgressSink

    bus = EventBus()
    bus.keep_history = False
    end: dict[str, Any] = {}
    bus.add(lambda rec: end.update(rec) if rec["event"] == "map_end" else None)
    sinks: list[Any] = []
    if log_path:
        sinks.append(JsonlSink(log_path))
    if not quiet:
        sinks.append(MapProgressSink())
    for s in sinks:
        bus.add(s)
    try:
        got = work(bus)
    finally:
        for s in sinks:
            s.close()
    return end, got


def run_over(g: Graph, items: list[dict[str, Any]], *, log_path: str | None, quiet: bool, **options: Any) -> None:
    """The ``--over`` form of ``nodegraph run``; exits 1 when an item failed."""
    end, _ = run_job(lambda bus: list(MapJob(g, items, events=bus, **options).run()), log_path, quiet)
    summarize(end)
    if end.get("error"):
        sys.exit(1)


def summarize(end: dict[str, Any]) -> None:
    from .dist import rank_world

    if not end or rank_world()[0] != 0:  # under torchrun rank 0 speaks for the job
        return
    n = end.get("ok", 0) + end.get("error", 0) + end.get("skipped", 0)
    parts = [f"{end.get('ok', 0)} done"]
    if end.get("error"):
        parts.append(click.style(f"{end['error']} failed", fg="red"))
    if end.get("skipped"):
        parts.append(f"{end['skipped']} skipped (done before)")
    click.echo(f"{n} item(s): {', '.join(parts)} in {end.get('seconds', 0):.2f}s; index {Path(end['index'])}",
               err=True)
    for k, v in (end.get("means") or {}).items():
        click.echo(f"mean {k} = {v:.6g}", err=True)
    for k, n in (end.get("stats") or {}).items():
        click.echo(f"stats of {k}: mu, sigma over {n} row(s) -> {end['stats_path']}", err=True)


def run_many(g: Graph, over: tuple[str, ...], *, product: bool, sweep: dict[str, Any] | None, pattern: str | None,
             lock: str | bool | None, **options: Any) -> None:
    """``nodegraph run`` with ``--over`` and/or a ``sweep`` section (their items in product)."""
    from .sweep import parse_sweep, run_sweep

    items = over_items(over, product) if over else [{}]
    lock_opt: str | bool = True if lock is None else lock
    if sweep is None:
        run_over(g, items, pattern=pattern or DEFAULT_PATTERN, lock=lock_opt, **options)
        return
    sw = parse_sweep(sweep, g.source)
    if over:  # every item with every variant
        sw.items = [{**a, **b} for a in items for b in sw.items]
        sw.pattern = pattern or "{name}_sweep/{stem}_{index:03d}"
    elif pattern:
        sw.pattern = pattern
    log_path, quiet = options.pop("log_path"), options.pop("quiet")
    end, wrote = run_job(lambda bus: run_sweep(g, sw, events=bus, lock=lock_opt, **options), log_path, quiet)
    summarize(end)
    for k in ("csv", "md", "sheet"):
        if k in (wrote or {}):
            click.echo(f"wrote {wrote[k]}", err=True)
    if end.get("error"):
        sys.exit(1)


def write_run_lock(g: Graph, ex: Any, bus: EventBus, results: dict[str, Any], outputs: list[str] | None,
                   lock: str | None) -> None:
    """The lock of a plain ``nodegraph run`` (``<first output folder>/<graph>.lock.json``)."""
    from .lock import build_lock, default_lock_path, outputs_of_run, write_lock

    got = outputs_of_run(g, bus.history, results, ex.ports)
    path = Path(lock) if lock else default_lock_path(g, got["files"][0]["path"] if got["files"] else None)
    write_lock(build_lock("run", g, list(results), ex.device, command={"outputs": outputs}, outputs=got), path)
    click.echo(f"lock {path}", err=True)


def replay_cli(lock: str, out_dir: str | None, device: str | None) -> None:
    from .replay import replay

    rep = replay(lock, out_dir, device)
    for r in rep.rows:
        d = r.get("max_diff")
        extra = "" if r["status"] in ("identical", "missing") or d is None else f" (max |diff| {d:.3g})"
        colour = "green" if r["status"] in ("identical", "pixel-identical") else "red"
        click.echo(f"{click.style(r['status'], fg=colour):>20}  {r['name']}{extra}")
    if rep.facts:
        click.echo("recorded facts that differ now:")
        for f in rep.facts:
            click.echo(f"  - {f}")
    elif not rep.identical and rep.kind != "train":
        click.echo("no recorded fact differs: the difference comes from nondeterminism "
                   "(threads, non-deterministic kernels)")
    n_same = sum(r["status"] in ("identical", "pixel-identical") for r in rep.rows)
    if rep.kind == "train":
        click.echo("a training lock: facts compared, the training not re-run", err=True)
    else:
        click.echo(f"{n_same}/{len(rep.rows)} output(s) identical; replay written to {rep.out_dir}", err=True)
    if not rep.identical:
        sys.exit(1)
