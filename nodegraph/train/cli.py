"""The ``nodegraph train`` command (click). It calls the loop (``loop.train``); the loop never imports it."""

from __future__ import annotations

import os
import shlex
import sys

import click
import torch.distributed as dist

from ..graph import cli_overrides, load_graph
from .export import usage_lines
from .loop import train
from .spec import parse_train


def _command_line() -> str:
    args = sys.argv[1:]
    if args and args[0] == "train":
        args = args[1:]
    cmd = "nodegraph train " + shlex.join(args)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return f"torchrun --nproc_per_node {world} {cmd}" if world > 1 else cmd


@click.command("train")
@click.argument("graph", type=click.Path(exists=True, dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="NODE.PARAM=VALUE",
              help="override a node param, a train setting (train.steps=500) or a node's type "
                   "(data=data.ADE20K)")
@click.option("--steps", type=int, default=None, help="total steps to reach (default: train.steps)")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="checkpoints and samples (default: runs/<graph name>)")
@click.option("--resume", is_flag=True, help="continue from the newest checkpoint in the run dir")
@click.option("--log", "--log-file", "log_path", type=click.Path(dir_okay=False), default=None,
              help="JSONL metrics file (under torchrun write --log-file: torchrun's parser takes --log "
                   "for an abbreviation of its own --log-dir)")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
@click.option("--export/--no-export", default=True,
              help="write the trained weights at the end (to RUN/export/ unless --weights-dir)")
@click.option("--weights-dir", type=click.Path(file_okay=False), default=None,
              help="export into this weights folder instead (e.g. weights/ to ship a default)")
@click.option("--replace", is_flag=True,
              help="allow replacing existing entries of --weights-dir (the previous files are kept, renamed)")
@click.option("--debug", is_flag=True, help="check every port every step; tracebacks on errors")
def train_cli(graph: str, overrides: tuple[str, ...], steps: int | None, run_dir: str | None, resume: bool,
              log_path: str | None, device: str | None, export: bool, weights_dir: str | None, replace: bool,
              debug: bool) -> None:
    """Train the trainable nodes of GRAPH as its `train` section describes.

    The weights are exported to RUN/export/NAME.safetensors with a manifest fragment, never into
    the shipped weights/ unless named with --weights-dir (and --replace to replace an entry)."""
    from ..cli import user_errors  # imported here: nodegraph.cli imports this module

    user_errors(exit_code=1)(_train)(graph, overrides, steps=steps, run_dir=run_dir, resume=resume,
                                     log_path=log_path, device=device, export=export, weights_dir=weights_dir,
                                     replace=replace, debug=debug)


def _train(graph: str, overrides: tuple[str, ...], *, steps: int | None, run_dir: str | None, resume: bool,
           log_path: str | None, device: str | None, export: bool, weights_dir: str | None, replace: bool,
           debug: bool) -> None:
    sets = cli_overrides(load_graph(graph), list(overrides))  # command-line paths: the working directory's
    try:
        result = train(graph, sets, steps=steps, run_dir=run_dir, resume=resume, log=log_path,
                       device=device, export=export, debug=debug, command=_command_line(),
                       weights_dir=weights_dir, replace=replace)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if result.interrupted:
        sys.exit(130)  # 128 + SIGINT, as shells report it
    if int(os.environ.get("RANK", "0")) == 0:
        losses = "  ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
        click.echo(f"trained {result.step} steps; {losses}", err=True)
        g = load_graph(graph).with_overrides(sets)
        for line in usage_lines(result.exported, parse_train(g).export):
            click.echo(line, err=True)
