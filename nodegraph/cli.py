"""The ``nodegraph`` command: run, train, validate, nodes, viz, convert, cache."""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from . import registry
from .cache import DEFAULT_RAM_BYTES, Cache, default_cache_dir
from .events import EventBus, JsonlSink, RichSink
from .graph import GraphError, cli_overrides, load_graph
from .node import NodeError
from .weights import WeightsError

USER_ERRORS = (GraphError, NodeError, WeightsError, FileNotFoundError, KeyError, ValueError)


def _print_error(e: BaseException) -> None:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    click.secho("error: ", fg="red", bold=True, nl=False, err=True)
    click.echo(msg, err=True)


def user_errors(exit_code: int = 1) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn user errors into a one-paragraph message and an exit code (traceback with --debug)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            debug = kwargs.get("debug", False)
            try:
                return fn(*args, **kwargs)
            except click.ClickException:
                raise
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                sys.exit(130)
            except GraphError as e:
                if debug:
                    traceback.print_exc()
                _print_error(e)
                sys.exit(2)
            except USER_ERRORS as e:
                if debug:
                    traceback.print_exc()
                _print_error(e)
                sys.exit(exit_code)
            except Exception as e:  # an internal error: still one paragraph unless --debug
                if debug:
                    raise
                _print_error(RuntimeError(f"{type(e).__name__}: {e} (run with --debug for the traceback)"))
                sys.exit(1)

        return wrapper

    return deco


def parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]?i?b?)?\s*", text.lower())
    if not m:
        raise click.BadParameter(f"{text!r} is not a size (e.g. 512MB, 2GB, 1073741824)")
    mult = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
            "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40, "tib": 2**40}
    return int(float(m.group(1)) * mult[m.group(2) or ""])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nodegraph")
def main() -> None:
    """nodegraph: typed node graphs for GAN image pipelines."""


@main.command()
@click.argument("graph", type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="NODE.PARAM=VALUE",
              help="override a param (JSON values); NODE=family.Type changes a node's type, "
                   "NODE.inputs.PORT=OTHER.PORT rewires")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="folder for relative output paths")
@click.option("--output", "outputs", multiple=True, metavar="NODE", help="compute only what NODE needs")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), help="write events as JSON lines")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1 or auto")
@click.option("--cache-dir", type=click.Path(file_okay=False), help=f"disk cache (default {default_cache_dir()})")
@click.option("--cache-ram", default="2GB", show_default=True, help="RAM cache bound in bytes (e.g. 512MB)")
@click.option("--no-cache", is_flag=True, help="compute everything, store nothing")
@click.option("--quiet", "-q", is_flag=True, help="no per-node status lines")
@click.option("--over", multiple=True, metavar="NODE.PARAM=SOURCE",
              help="run once per item: SOURCE is a folder, a glob, a .txt/.csv list or a JSON list; "
                   "several --over zip (see docs/engine.md, Many inputs)")
@click.option("--product", is_flag=True, help="cross product of the --over sources instead of zip")
@click.option("--name", "pattern", metavar="PATTERN", help="per-item output names: {stem} {index} {name} {node} "
              "{p[node.param]} (default {name}/{stem}: out/x.png -> out/x/<stem>.png)")
@click.option("--batch", default=1, show_default=True, help="items per call where the nodes allow")
@click.option("--keep-going", is_flag=True, help="record a failing item in the index and go on")
@click.option("--index", "index_path", type=click.Path(dir_okay=False), help="results index (JSONL)")
@click.option("--no-resume", is_flag=True, help="recompute items the index records as done")
@click.option("--stats", multiple=True, metavar="NODE.PORT",
              help="mean and covariance of a per-item output over all items (and ranks)")
@click.option("--no-sweep", is_flag=True, help="ignore the graph's sweep section")
@click.option("--lock", "lock_path", type=click.Path(dir_okay=False), help="where to write the run lock")
@click.option("--no-lock", is_flag=True, help="write no run lock")
@click.option("--debug", is_flag=True, help="show Python tracebacks")
@user_errors(exit_code=1)
def run(graph: str, sets: tuple[str, ...], out_dir: str | None, outputs: tuple[str, ...], log_path: str | None,
        device: str, cache_dir: str | None, cache_ram: str, no_cache: bool, quiet: bool, over: tuple[str, ...],
        product: bool, pattern: str | None, batch: int, keep_going: bool, index_path: str | None, no_resume: bool,
        stats: tuple[str, ...], no_sweep: bool, lock_path: str | None, no_lock: bool, debug: bool) -> None:
    """Run GRAPH (a .json graph file); with --over or a sweep section, once per item."""
    from .executor import Executor
    from .mapcli import run_many, write_run_lock

    g = load_graph(graph)
    g = g.with_overrides(cli_overrides(g, list(sets)))
    for note in g.notes:
        click.echo(f"note: {note}", err=True)
    if out_dir:
        g.out_dir = Path(out_dir).resolve()
    cache = Cache(ram_bytes=parse_bytes(cache_ram) if cache_ram else DEFAULT_RAM_BYTES,
                  disk_dir=Path(cache_dir) if cache_dir else default_cache_dir(), enabled=not no_cache)
    lock = False if no_lock else lock_path
    if over or (g.spec.sweep and not no_sweep):
        run_many(g, over, product=product, sweep=None if no_sweep else g.spec.sweep, pattern=pattern, lock=lock,
                 outputs=list(outputs) or None, batch=batch, keep_going=keep_going, index=index_path,
                 resume=not no_resume, device=device, cache=cache, log_path=log_path, quiet=quiet,
                 stats=list(stats))
        return
    bus = EventBus()
    sinks: list[Any] = []
    if log_path:
        sinks.append(JsonlSink(log_path))
    if not quiet:
        sinks.append(RichSink(brief_errors=True))  # user_errors prints the error's paragraph once
    for s in sinks:
        bus.add(s)
    try:
        ex = Executor(g, device=device, cache=cache, events=bus)
        results = ex.run(list(outputs) or None)
    finally:
        for s in sinks:
            s.close()
    if lock is not False:
        write_run_lock(g, ex, bus, results, list(outputs) or None, lock)
    end = next((e for e in reversed(bus.history) if e["event"] == "run_end"), None)
    if end and not quiet:
        click.echo(f"finished in {end['seconds']:.2f}s: {end['computed']} computed, {end['cached']} cached",
                   err=True)


@main.command()
@click.argument("graph", type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="NODE.PARAM=VALUE")
@click.option("--debug", is_flag=True)
@user_errors(exit_code=2)
def validate(graph: str, sets: tuple[str, ...], debug: bool) -> None:
    """Check GRAPH without running it; prints every problem and exits 2 if there are any."""
    g = load_graph(graph)
    g = g.with_overrides(cli_overrides(g, list(sets)))
    for note in g.notes:
        click.echo(f"note: {note}", err=True)
    ports = g.check()
    if g.spec.train is not None:
        from .train.spec import check_train, parse_train

        check_train(g, parse_train(g), ports)
    extra = ""
    if g.spec.sweep is not None:
        from .sweep import check_sweep

        extra = f", sweep of {check_sweep(g)} variants"
    click.echo(f"{graph}: ok ({len(g.spec.nodes)} nodes{extra})")


def describe_type(cls: Any) -> dict[str, Any]:
    schema = cls.Params.model_json_schema()
    params = {}
    for name, info in cls.Params.model_fields.items():
        prop = schema.get("properties", {}).get(name, {})
        entry = {k: v for k, v in prop.items() if k not in ("title",)}
        entry["required"] = info.is_required()
        params[name] = entry
    return {
        "type": cls.type_name,
        "doc": cls.doc(),
        "version": cls.version,
        "module": cls.__module__,
        "inputs": {k: v.to_json() for k, v in cls.inputs.items()},
        "outputs": {k: v.to_json() for k, v in cls.outputs.items()},
        "params": params,
    }


def summary(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, joined across its wrapped lines (the
    first line alone stopped mid-sentence)."""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    m = re.search(r"(?<=[.!?:])\s+(?=[A-Z(`])", para)
    return para[: m.start()] if m else para


@main.command()
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable listing")
@click.option("--label-sets", is_flag=True, help="list label sets and their palettes instead")
def nodes(pattern: str | None, as_json: bool, label_sets: bool) -> None:
    """List every node type (ports, params, defaults, docs); PATTERN filters by name."""
    from .types import get_label_set, label_set_names

    types = registry.all_types()
    if label_sets:
        data = {n: {"names": list(get_label_set(n).names), "palette": [list(c) for c in get_label_set(n).palette]}
                for n in label_set_names()}
        def entry(i: int, name: str, pal: list) -> str:  # id=name(r,g,b): what a painter needs
            return f"{i}={name}" + (f"({','.join(map(str, pal[i]))})" if i < len(pal) else "")

        click.echo(json.dumps(data, indent=2) if as_json else "\n".join(
            f"{n}: " + ", ".join(entry(i, c, v["palette"]) for i, c in enumerate(v["names"]))
            for n, v in data.items()))
        return
    chosen = {k: v for k, v in types.items() if not pattern or pattern.lower() in k.lower()}
    if as_json:
        click.echo(json.dumps({k: describe_type(v) for k, v in chosen.items()}, indent=2, default=str))
        return
    from rich.console import Console
    from rich.markup import escape

    con = Console()
    for name, cls in chosen.items():
        d = describe_type(cls)
        first = escape(summary(d["doc"]))
        con.print(f"[bold cyan]{name}[/]  {first}")
        for k, v in d["inputs"].items():
            con.print(f"    in   {k}: {v['describe']}{' (optional)' if v.get('optional') else ''}")
        for k, v in d["outputs"].items():
            con.print(f"    out  {k}: {v['describe']}")
        for k, v in d["params"].items():
            default = "" if v.get("required") else f" = {json.dumps(v.get('default'))}"
            desc = f"  — {v['description']}" if v.get("description") else ""
            con.print(f"    param {k}{default}{desc}", markup=False)
    broken = registry.failed_plugins()
    if broken:
        for k, v in broken.items():
            con.print(f"[yellow]plugin {k} failed to import: {v}[/]", markup=True)


@main.command()
@click.argument("graph", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="graph.png, graph.svg or graph.dot")
@click.option("--log", "log_path", type=click.Path(exists=True, dir_okay=False),
              help="overlay times and cache hits from a run's --log")
@click.option("--debug", is_flag=True)
@user_errors(exit_code=1)
def viz(graph: str, output: str, log_path: str | None, debug: bool) -> None:
    """Draw GRAPH with typed edges (optionally with a run's timings)."""
    from .viz import render

    render(load_graph(graph), Path(output), log_path)
    click.echo(f"wrote {output}")


@main.command()
@click.argument("kind")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--preset", default=None, help="dataset preset where the format needs one (e.g. ade20k)")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="converter-specific option")
@click.option("--debug", is_flag=True)
@user_errors(exit_code=1)
def convert(kind: str, src: str, dst: str, preset: str | None, options: tuple[str, ...], debug: bool) -> None:
    """Convert an official checkpoint SRC (.pth) of KIND (photowct, spade, bisenet, vgg19, or a
    plugin's) to safetensors DST."""
    fn = registry.load_converter(kind)
    kw: dict[str, Any] = {}
    if preset:
        kw["preset"] = preset
    for o in options:
        k, _, v = o.partition("=")
        try:
            kw[k] = json.loads(v)
        except json.JSONDecodeError:
            kw[k] = v
    result = fn(src, dst, **kw)
    click.echo(f"wrote {dst}" + (f" ({result})" if isinstance(result, str) else ""))


@main.command()
@click.argument("lock", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="where the replay writes (default: a temp folder)")
@click.option("--device", default=None, help="default: the recorded device")
@click.option("--debug", is_flag=True)
@user_errors(exit_code=1)
def replay(lock: str, out_dir: str | None, device: str | None, debug: bool) -> None:
    """Re-run what LOCK (a *.lock.json of run, map or train) recorded; per output: bit-identical,
    or the largest difference and which recorded fact differs now. Exit 1 unless all identical."""
    from .mapcli import replay_cli

    replay_cli(lock, out_dir, device)


@main.group()
def cache() -> None:
    """Inspect or clear the disk cache."""


@cache.command("info")
@click.option("--cache-dir", type=click.Path(file_okay=False))
def cache_info(cache_dir: str | None) -> None:
    c = Cache(disk_dir=Path(cache_dir) if cache_dir else default_cache_dir())
    n, size = c.disk_usage()
    click.echo(f"{c.disk_dir}: {n} entries, {size / 2**20:.1f} MiB")


@cache.command("clear")
@click.option("--cache-dir", type=click.Path(file_okay=False))
def cache_clear(cache_dir: str | None) -> None:
    c = Cache(disk_dir=Path(cache_dir) if cache_dir else default_cache_dir())
    removed = c.clear()
    click.echo(f"removed {removed / 2**20:.1f} MiB from {c.disk_dir}")


def _current_code(node_type: str) -> str | None:
    """Digest of the code that computes ``node_type`` now; None if no such type is installed."""
    from .codeversion import code_digest

    try:
        return code_digest(registry.get(node_type))
    except KeyError:
        return None


def _stale(cache_dir: str | None) -> tuple[Path, list[tuple[Path, str]], int]:
    from .cache import stale_entries

    d = Path(cache_dir) if cache_dir else default_cache_dir()
    registry.load_all()
    total = len(list(d.rglob("*.safetensors"))) if d.is_dir() else 0
    return d, (stale_entries(d, _current_code) if d.is_dir() else []), total


@cache.command("list")
@click.option("--cache-dir", type=click.Path(file_okay=False))
def cache_list(cache_dir: str | None) -> None:
    """Count entries per node type, and those whose code no longer exists (see `cache prune`)."""
    from collections import Counter

    from .cache import entry_meta

    d, stale, total = _stale(cache_dir)
    entries = list(d.rglob("*.safetensors")) if d.is_dir() else []
    per_type = Counter((entry_meta(p) or {}).get("node_type", "(type not recorded)") for p in entries)
    bad = Counter(why for _, why in stale)
    for t, n in sorted(per_type.items()):
        click.echo(f"{t:32s} {n} entries")
    for why, n in sorted(bad.items()):
        click.echo(f"  stale: {n} x {why}")
    click.echo(f"{d}: {total} entries, {len(stale)} stale (code that no longer exists; "
               "`nodegraph cache prune` removes them)")


@cache.command("prune")
@click.option("--cache-dir", type=click.Path(file_okay=False))
@click.option("--dry-run", is_flag=True, help="only say what would be removed")
def cache_prune(cache_dir: str | None, dry_run: bool) -> None:
    """Remove the entries written by code that no longer exists (a changed node, a removed type)."""
    d, stale, total = _stale(cache_dir)
    size = 0
    for p, _ in stale:
        size += p.stat().st_size
        if not dry_run:
            p.unlink(missing_ok=True)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(stale)} of {total} entries ({size / 2**20:.1f} MiB) from {d}")


def _add_train() -> None:
    try:
        from .train import train_cli
    except ImportError:  # the training engine is optional at import time
        return
    main.add_command(train_cli, "train")


_add_train()


if __name__ == "__main__":  # pragma: no cover
    main()
