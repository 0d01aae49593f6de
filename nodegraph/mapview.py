"""Terminal view of a mapped job: one bar for the job (items done, rate, ETA) with the bars of
the nodes that report progress nested under it; failed items and first-seen warnings printed."""

from __future__ import annotations

from typing import Any


class MapProgressSink:
    """An ``EventBus`` sink for ``map_start`` / ``item_done`` / ``item_error`` / ``progress``."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self.job: Any = None
        self.nodes: dict[str, Any] = {}
        self.warned: set[tuple[Any, str]] = set()
        self.done = 0

    def __call__(self, rec: dict[str, Any]) -> None:
        ev = rec["event"]
        if ev == "map_start":
            self.progress.start()
            who = f" rank {rec['rank']}/{rec['world']}" if rec.get("world", 1) > 1 else ""
            self.job = self.progress.add_task(f"[bold]items{who}", total=rec["todo"], rate="")
            if rec.get("skipped"):
                self.console.print(f"resume: {rec['skipped']} item(s) already done ({rec['index']})")
        elif ev == "progress" and self.job is not None:
            node = rec.get("node")
            if node not in self.nodes:
                self.nodes[node] = self.progress.add_task(f"  └ {node}", total=rec.get("n") or None, rate="")
            self.progress.update(self.nodes[node], completed=rec.get("i", 0), total=rec.get("n") or None)
        elif ev in ("item_done", "item_error") and self.job is not None:
            for task in self.nodes.values():
                self.progress.remove_task(task)
            self.nodes.clear()
            self.done += 1
            task = self.progress.tasks[self.job]
            rate = f"{self.done / task.elapsed:.2f} it/s" if task.elapsed else ""
            self.progress.update(self.job, advance=1, rate=rate)
            if ev == "item_error":
                from rich.markup import escape

                from .mapexec import error_text

                self.console.print(f"[bold red]failed[/] item {rec['index']} ({escape(str(rec['item']))}): "
                                   + escape(error_text(rec.get("error"))), highlight=False)
        elif ev == "warning":
            key = (rec.get("node"), rec.get("message", ""))
            if key not in self.warned:
                self.warned.add(key)
                from rich.markup import escape

                self.console.print(f"[yellow]warning[/] {escape(f'{key[0]}: {key[1]}')}")
        elif ev in ("map_end", "map_interrupted"):
            self.close()

    def close(self) -> None:
        if self.job is not None:
            self.progress.stop()
            self.job = None
