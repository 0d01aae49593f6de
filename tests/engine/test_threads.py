"""The executor starts as many torch threads as CPUs are free when a run starts (issue 19 §3),
unless the environment fixes the count, and restores the previous count afterwards.

Mutants killed: the executor ignoring ``run_threads`` (the node sees 2 beside a neighbour);
``user_fixed`` ignored (OMP_NUM_THREADS overridden); the count not restored after the run."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from nodegraph import threads
from nodegraph.executor import Executor
from nodegraph.graph import graph_from_dict
from nodegraph.node import Node
from nodegraph.registry import register
from nodegraph.types import Scalar


@register("ttest.ThreadCount")
class ThreadCount(Node):
    """Outputs the torch thread count it runs under."""

    cacheable = False
    outputs = {"n": Scalar()}

    def forward(self) -> dict[str, Any]:
        return {"n": torch.tensor(float(torch.get_num_threads()))}


def _seen(tmp_path) -> int:
    g = graph_from_dict({"nodegraph": 1, "nodes": {"t": {"type": "ttest.ThreadCount"}}}, base_dir=tmp_path)
    return int(Executor(g, device="cpu").run(["t"])["t"]["n"])


@pytest.fixture
def two_cpus(monkeypatch):
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("NODEGRAPH_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    yield monkeypatch
    torch.set_num_threads(old)


def test_run_uses_the_free_cpus_and_restores_the_count(tmp_path, two_cpus) -> None:
    two_cpus.setattr(threads, "_running_tasks", lambda: 1)  # only us
    assert _seen(tmp_path) == 2
    two_cpus.setattr(threads, "_running_tasks", lambda: 2)  # one busy neighbour
    assert _seen(tmp_path) == 1
    assert torch.get_num_threads() == 2


def test_environment_fixes_the_count(tmp_path, two_cpus) -> None:
    two_cpus.setattr(threads, "_running_tasks", lambda: 2)
    two_cpus.setenv("OMP_NUM_THREADS", "2")
    assert _seen(tmp_path) == 2  # the user's setting stands, neighbour or not
    two_cpus.delenv("OMP_NUM_THREADS")
    two_cpus.setenv("NODEGRAPH_THREADS", "2")
    assert _seen(tmp_path) == 2


def test_a_passing_blip_is_not_a_neighbour(two_cpus) -> None:
    """A task that is runnable in one sample only (a short-lived process) does not halve the
    threads; a neighbour runnable in every sample does."""
    seq = iter([2, 1, 1, 1, 1])
    two_cpus.setattr(threads, "_running_tasks", lambda: next(seq))
    assert threads.free_cpus(samples=5) == 2
    two_cpus.setattr(threads, "_running_tasks", lambda: 2)
    assert threads.free_cpus(samples=5) == 1
