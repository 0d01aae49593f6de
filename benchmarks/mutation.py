"""Mutation testing, one module at a time, on demand (not in CI): how many deliberate small bugs
("mutants") the tests that claim to cover a module catch.

    python benchmarks/mutation.py nodes/pis/convert.py            # the tests listed in MODULES
    python benchmarks/mutation.py nodes/pis/multigrid.py --only 'x_vcycle*' --children 2
    python benchmarks/mutation.py nodes/common/io.py --tests tests/common/test_io.py
    python benchmarks/mutation.py --list                          # the module -> tests table

The tool is mutmut 3 (``pip install -e ".[dev]"`` brings it). mutmut copies the code into a
``mutants/`` folder, rewrites every function into a trampoline that can switch to one of its
mutants (an operator flipped, a constant changed, an argument dropped, a string altered, ...),
records once which tests reach which function, and then runs, for each mutant, only those tests
in a process forked from a warmed-up server (torch is imported once, not once per mutant).

This script keeps that away from the shared working tree: it copies the tracked files into
``runs/mutation/<module>/`` (gitignored; kept between runs so an unchanged module is not
re-run), writes a ``[tool.mutmut]`` table for the one module and its tests into the copy's
pyproject.toml, runs ``mutmut run`` there with one OpenMP thread per worker, and prints the
kill rate plus every surviving mutant's diff (also written to ``survivors.txt`` in the run dir).
A module's kill rate is killed / (killed + survived); mutants no listed test reaches ("no
tests") and timeouts are reported apart. Results per module: ``benchmarks/mutation.md``.

Budget: every mutant runs the tests that reach its function, so time ~ mutants x those tests'
time / children. A converter (~70 mutants, 3 tests) takes ~6 min on the busy 2-core machine;
narrow a large module with ``--only`` (a glob over mutmut's names, ``x_<function>__mutmut_<n>``
or ``xǁ<Class>ǁ<method>__mutmut_<n>``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent

# module -> the pytest arguments that select the tests covering it. Keep the selection to the
# tests that exist for that module (mutmut runs them once for the coverage map, then per mutant).
MODULES: dict[str, list[str]] = {
    "nodes/common/convert.py": ["tests/common/test_converters.py"],
    "nodes/pis/convert.py": ["tests/common/test_converters.py"],
    "nodes/spade/convert.py": ["tests/common/test_converters.py", "tests/spade/test_spade.py", "-k",
                               "converter or convert"],
    "nodes/face/convert.py": ["tests/common/test_converters.py"],
    "nodes/common/vgg_convert.py": ["tests/common/test_converters.py"],
    "nodes/common/losses.py": ["tests/common/test_losses.py", "tests/portrait/test_objective.py"],
    "nodes/spade/net.py": ["tests/spade/test_sampling.py", "tests/spade/test_spade.py"],
    "nodes/pis/smoothing.py": ["tests/pis/test_smoothing.py"],
    "nodes/pis/multigrid.py": ["tests/pis/test_smoothing.py"],
    "nodes/common/io.py": ["tests/common/test_io.py", "tests/common/test_label_maps.py"],
    "nodes/common/imageio.py": ["tests/common/test_io.py", "tests/common/test_label_maps.py"],
    # the engine: its tests live together in tests/engine (a few minutes per run of the selection)
    "nodegraph/cache.py": ["tests/engine/test_executor.py", "tests/engine/test_cache_keys.py",
                           "tests/engine/test_savers.py"],
    "nodegraph/executor.py": ["tests/engine/test_executor.py"],
    "nodegraph/validate.py": ["tests/engine/test_graph_validation.py"],
    "nodegraph/graph.py": ["tests/engine/test_graph_validation.py", "tests/engine/test_cli_paths.py"],
    "nodegraph/train/loop.py": ["tests/engine/test_train.py"],
}

# what the tests read besides the code (PROJECT_ROOT is the copy's mutants/ folder)
ALSO_COPY = ["weights", "graphs", "examples", "docs", "README.md", "benchmarks", ".ci"]


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return [f for f in out.splitlines() if f and (ROOT / f).is_file()]


def sync_copy(work: Path) -> None:
    """Make ``work`` hold the working tree's tracked + unignored files (only changed files copied)."""
    work.mkdir(parents=True, exist_ok=True)
    for rel in tracked_files():
        src, dst = ROOT / rel, work / rel
        if dst.is_file() and dst.stat().st_size == src.stat().st_size and dst.read_bytes() == src.read_bytes():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def mutmut_table(module: str, tests: list[str]) -> str:
    dirs = sorted({module.split("/")[0], "nodegraph", "nodes"})
    lines = [
        "[tool.mutmut]",
        f"source_paths = {json.dumps(dirs)}",
        f"only_mutate = {json.dumps([module])}",
        f"also_copy = {json.dumps(ALSO_COPY)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]',
        # torch is not fork-safe once it has run ops: fork the workers from a clean server
        'process_isolation = "forkserver"',
        "use_git_change_detection = false",
        "timeout_multiplier = 5.0",
        "timeout_constant = 20.0",
    ]
    return "\n".join(lines) + "\n"


def write_config(work: Path, module: str, tests: list[str]) -> None:
    text = (ROOT / "pyproject.toml").read_text()
    # drop the repository-wide [tool.mutmut] table; the copy gets the one-module table instead
    head, sep, rest = text.partition("[tool.mutmut]")
    if sep:
        nxt = rest.find("\n[")
        text = head + (rest[nxt + 1:] if nxt >= 0 else "")
    (work / "pyproject.toml").write_text(text.rstrip() + "\n\n" + mutmut_table(module, tests))
    tomllib.loads((work / "pyproject.toml").read_text())  # fail here, not inside mutmut


def results(work: Path, env: dict[str, str]) -> dict[str, list[str]]:
    out = subprocess.run(["mutmut", "results", "--all", "true"], cwd=work, env=env, capture_output=True,
                         text=True).stdout
    by: dict[str, list[str]] = {}
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            by.setdefault(status, []).append(name)
    return by


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("module", nargs="?", help="a module path, e.g. nodes/pis/convert.py")
    ap.add_argument("--tests", nargs="+", help="pytest args selecting the covering tests (default: MODULES)")
    ap.add_argument("--only", nargs="+", default=[], help="mutant name globs (default: every mutant)")
    ap.add_argument("--children", type=int, default=2, help="parallel workers (default 2)")
    ap.add_argument("--fresh", action="store_true", help="forget earlier results for this module")
    ap.add_argument("--list", action="store_true", help="print the module -> tests table")
    a = ap.parse_args(argv)
    if a.list or not a.module:
        for m, t in MODULES.items():
            print(f"{m:32s} {' '.join(t)}")
        return 0
    module = a.module.removeprefix("./")
    if not (ROOT / module).is_file():
        ap.error(f"no such module: {module}")
    tests = a.tests or MODULES.get(module)
    if not tests:
        ap.error(f"{module} is not in MODULES; name its tests with --tests")
    work = ROOT / "runs" / "mutation" / module.removesuffix(".py").replace("/", ".")
    if a.fresh and work.exists():
        shutil.rmtree(work)
    sync_copy(work)
    write_config(work, module, tests)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = ["mutmut", "run", "--max-children", str(a.children), *a.only]
    print(f"{module}: mutmut in {work} (tests: {' '.join(tests)})", flush=True)
    rc = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL).returncode
    by = results(work, env)
    killed = len(by.get("killed", [])) + len(by.get("caught by type check", []))
    survived = by.get("survived", [])
    rest = {k: len(v) for k, v in by.items() if k not in ("killed", "survived", "caught by type check")}
    total = killed + len(survived)
    rate = 100.0 * killed / total if total else float("nan")
    print(f"{module}: {killed}/{total} killed ({rate:.0f} %); other: {rest or 'none'}; mutmut exit {rc}")
    report = []
    for name in survived:
        diff = subprocess.run(["mutmut", "show", name], cwd=work, env=env, capture_output=True, text=True).stdout
        report.append(f"## {name}\n" + "\n".join(ln for ln in diff.splitlines() if ln[:1] in "+-@"))
    (work / "survivors.txt").write_text("\n\n".join(report) + "\n")
    if survived:
        print(f"survivors ({len(survived)}): {work / 'survivors.txt'}")
    return 0 if rc == 0 else rc


if __name__ == "__main__":
    sys.exit(main())
