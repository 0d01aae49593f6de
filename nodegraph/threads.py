"""How many CPU threads a run starts: the CPUs free when it starts, unless the user said.

On a shared machine a torch op split over as many threads as there are cores ends at a barrier
that waits for the slowest thread; when another process owns a core, that thread is descheduled
for a scheduler slice at every parallel region. Beside one busy process on 2 cores, 2 threads made
the PIS smoothing solve 3-9x slower than 1 thread (issue 19); idle, 2 threads are ~1.7x faster.
So ``nodegraph run`` (the executor) starts ``free_cpus()`` threads unless the user fixed the count
(``OMP_NUM_THREADS`` or ``NODEGRAPH_THREADS`` in the environment), and restores the previous count
when the run ends. Figures for the shipped forwards: ``benchmarks/neighbour_forward.py``.
"""

from __future__ import annotations

import os
import time

import torch


def free_cpus(samples: int = 5) -> int:
    """Threads worth starting now: the CPUs this process may run on (``sched_getaffinity``, which
    honours taskset / cgroup cpusets) minus the other tasks running on the machine at this moment
    (the running count of /proc/loadavg, sampled ``samples`` times ~5 ms apart, the *lowest*
    kept: a busy neighbour is runnable in every sample, a short-lived task in few; keeping the
    highest made an idle machine look busy at every blip and halved the smoothing speed, issue 19),
    at least 1 and at most torch's current count. Off Linux: torch's count, capped at the CPUs."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    busy = cpus
    for i in range(samples):
        running = _running_tasks()
        if running is None:  # not Linux: trust the CPU count
            return max(1, min(cpus, torch.get_num_threads()))
        busy = min(busy, running - 1)  # the count includes this process
        if i < samples - 1:
            time.sleep(0.005)
    return max(1, min(cpus - busy, torch.get_num_threads()))


def _running_tasks() -> int | None:
    """Tasks running or runnable on the machine now (4th field of /proc/loadavg), None elsewhere."""
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def user_fixed() -> bool:
    """True when the environment sets the thread count (``OMP_NUM_THREADS`` / ``NODEGRAPH_THREADS``)."""
    return bool(os.environ.get("OMP_NUM_THREADS") or os.environ.get("NODEGRAPH_THREADS"))


def run_threads(samples: int = 1) -> int | None:
    """The thread count a run should use, or None to leave torch's setting alone. One sample of
    /proc/loadavg by default (~50 us: a mapped run asks once per item)."""
    fixed = os.environ.get("NODEGRAPH_THREADS")
    if fixed:
        return max(1, int(fixed))
    return None if user_fixed() else free_cpus(samples)


class torch_threads:
    """``with torch_threads(n):`` torch uses n threads inside the block (None: unchanged)."""

    def __init__(self, n: int | None) -> None:
        self.n = n

    def __enter__(self) -> None:
        self.old = torch.get_num_threads()
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.old)
