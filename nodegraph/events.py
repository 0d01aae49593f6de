"""Events: what happened while a graph ran, for people (rich) and programs (JSON lines).

Every event is a flat dict with at least ``event`` and ``node`` (``None`` for graph-level
events) and ``t`` (seconds since the bus started). Kinds: ``start``, ``cached``, ``done``
(``seconds``, ``peak_bytes`` where measurable), ``progress`` (``i``, ``n``), ``error``,
``warning``, plus graph-level ``run_start`` / ``run_end``; training adds ``step``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

Sink = Callable[[dict[str, Any]], None]


class EventBus:
    """Fans events out to sinks; never lets a broken sink break the run."""

    def __init__(self, sinks: list[Sink] | None = None) -> None:
        self.sinks: list[Sink] = list(sinks or [])
        self.t0 = time.perf_counter()
        self.history: list[dict[str, Any]] = []
        self.keep_history = True

    def add(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def emit(self, event: str, node: str | None = None, **fields: Any) -> None:
        rec = {"event": event, "node": node, "t": round(time.perf_counter() - self.t0, 6), **fields}
        if self.keep_history:
            self.history.append(rec)
        for sink in self.sinks:
            try:
                sink(rec)
            except Exception:  # noqa: BLE001 - logging must not kill a run
                pass

    def __call__(self, event: str, node: str | None = None, **fields: Any) -> None:
        self.emit(event, node=node, **fields)


class JsonlSink:
    """Writes one JSON object per line, flushed per event so a crash keeps the log."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: TextIO = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def __call__(self, rec: dict[str, Any]) -> None:
        self._f.write(json.dumps(rec, default=str) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_log(path: str | Path) -> list[dict[str, Any]]:
    out = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


class RichSink:
    """Per-node status lines and progress bars on a terminal."""

    def __init__(self, console: Any = None, brief_errors: bool = False) -> None:
        """``brief_errors``: an ``error`` line names the node only, for callers that print the
        error's full paragraph themselves once the run stops (``nodegraph run``), so it is not
        shown twice."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True,
        )
        self.tasks: dict[str, Any] = {}
        self.started = False
        self.brief_errors = brief_errors

    def __call__(self, rec: dict[str, Any]) -> None:
        ev, node = rec["event"], rec.get("node")
        if ev == "progress":
            if not self.started:
                self.progress.start()
                self.started = True
            if node not in self.tasks:
                self.tasks[node] = self.progress.add_task(f"{node}", total=rec.get("n") or None)
            self.progress.update(self.tasks[node], completed=rec.get("i", 0), total=rec.get("n") or None,
                                 description=f"{node} {rec.get('message', '')}".strip())
            return
        if node in self.tasks and ev in ("done", "error"):
            self.progress.remove_task(self.tasks.pop(node))
        if ev == "start":
            self.console.print(f"[cyan]run[/]    {node} ({rec.get('type', '')}) [dim]{rec.get('reason', '')}[/]")
        elif ev == "cached":
            self.console.print(f"[green]cached[/] {node} ({rec.get('tier', '')})")
        elif ev == "done":
            mem = rec.get("peak_bytes")
            extra = f", peak {mem / 2**20:.0f} MiB" if mem else ""
            self.console.print(f"[bold green]done[/]   {node} in {rec.get('seconds', 0):.2f}s{extra}")
        elif ev == "error" and self.brief_errors:
            self.console.print(f"[bold red]error[/]  {node} ({rec.get('type', '')}): stopped, see below")
        elif ev == "error":
            self.console.print(f"[bold red]error[/]  {node}: {rec.get('message', '')}")
        elif ev == "warning":
            self.console.print(f"[yellow]warning[/] {node}: {rec.get('message', '')}")
        elif ev == "saved":
            self.console.print(f"[bold]saved[/]  {rec.get('path')}")

    def close(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False
