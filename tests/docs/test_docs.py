"""Every fenced block in README.md and docs/**/*.md runs here, in the order a reader meets it.

Blocks are found by Sybil's Markdown lexer; each becomes one test (``README.md:42``). A block
runs in a sandbox per document (a copy of ``graphs/`` and ``examples/``, an empty ``weights/``
and ``runs/``; one node cache for the whole test session), with the working directory there, so the documented relative
paths mean what they mean for a reader in the project folder, and nothing is written to the
checkout. What each fence language means:

- ``bash`` / ``sh`` / ``console``: every command (``\\`` continuations joined, ``#`` comments and
  ``&&`` chains split) must succeed. ``nodegraph ...`` runs in-process through the click CLI;
  ``nodegraph train`` is cut short (``--steps 2``, or ``--steps N`` capped at 4, so a documented
  ``--resume`` still continues a run); its exports land in the sandbox (``runs/``, or the
  sandbox's ``weights/`` for ``--weights-dir weights``).
  ``pip install ...`` and ``python -m pytest`` are not re-run here: the same command must appear
  in ``.ci/run``, which is how CI installs and tests (CI runs what users run). Other commands run
  as subprocesses. Files a reader brings (official checkpoints, their own photo) are written in
  their published layout by ``tests/docs/fixtures.py`` when a command names them.
- ``python``: executed; the blocks of one document share a namespace.
- ``json``: a whole graph (``"nodegraph": 1``) is validated and run; a fragment (``"key": ...``)
  must be an excerpt of a shipped graph (keys may be left out, values must agree), or
  (``"phases"``) validate as a train phase list.
- ``toml``: must parse. ``text``: output samples and synopses, not run.
  A block with no language fails: say what it is.

To keep a block out (a GPU job, a dataset that is not here), put a Sybil skip directive with the
reason on the line before its fence; the reason shows in pytest's skip report:

    <!-- skip: next "needs the ADE20K dataset; tests/spade/test_spade_real_data.py covers the reader" -->

Mutants this catches (each tried): a README command whose graph no longer validates (the
ADE20K command before its label map was added), ``nodegraph nodes --label-sets`` without
colours, a ``pip install`` line missing from .ci/run, a python block with an undefined name.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib
from click.testing import CliRunner
from sybil import Example, Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import CodeBlockParser, SkipParser

from tests.docs.fixtures import FILES

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN_LANGS = {"bash", "sh", "console"}
KNOWN_LANGS = RUN_LANGS | {"python", "json", "toml", "text"}
TRAIN_STEPS, TRAIN_STEPS_MAX = 2, 4
FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([^\s`]*)", re.MULTILINE)


# ---- commands -------------------------------------------------------------------------------
def commands(source: str) -> list[list[str]]:
    """Shell text -> argv lists (continuations joined, comments dropped, ``&&`` split)."""
    out: list[list[str]] = []
    for line in source.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        cur: list[str] = []
        for w in words + ["&&"]:
            if w == "&&":
                if cur:
                    out.append(cur)
                cur = []
            else:
                cur.append(w)
    return out


def _ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text().replace("\\\n", " ").splitlines()
    return [_normal(shlex.split(ln, comments=True)) for ln in lines if ln.strip()]


def _normal(argv: list[str]) -> str:
    """``python -m pip install --quiet X`` == ``pip install X`` (quiet flags and quotes aside)."""
    words = [w for w in argv if w not in ("-q", "--quiet")]
    if words[:3] == ["python", "-m", "pip"] or words[:3] == ["python3", "-m", "pip"]:
        words = words[2:]
    return " ".join(words)


def _train_args(args: list[str]) -> list[str]:
    args = list(args)
    if "--steps" in args:
        i = args.index("--steps")
        args[i + 1] = str(min(int(args[i + 1]), TRAIN_STEPS_MAX))
    else:
        args += ["--steps", str(TRAIN_STEPS)]
    return args


def run_command(argv: list[str], sandbox: Path) -> None:
    for word in argv:
        name = word.rpartition("=")[2]  # a file named as a --set value too
        if name in FILES and not (sandbox / name).exists():
            FILES[name](sandbox / name)
    name = argv[0]
    if name == "nodegraph":
        from nodegraph.cli import main

        args = argv[1:]
        if args[:1] == ["train"]:
            args = _train_args(args)
        res = CliRunner().invoke(main, args, catch_exceptions=False)
        assert res.exit_code == 0, f"`{shlex.join(argv)}` exited {res.exit_code}:\n{res.output[-3000:]}"
    elif name in ("pip", "pip3") or argv[:3] in (["python", "-m", "pip"], ["python", "-m", "pytest"]):
        ci = _ci_commands()
        want = _normal(argv)
        assert any(c.startswith(want) for c in ci), (
            f"the docs tell users to run `{shlex.join(argv)}` but .ci/run does not (CI runs what users run)")
    elif name in ("python", "python3"):
        res = subprocess.run([sys.executable, *argv[1:]], cwd=sandbox, capture_output=True, text=True,
                             timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert res.returncode == 0, f"`{shlex.join(argv)}` exited {res.returncode}:\n{res.stderr[-3000:]}"
    else:
        pytest.fail(f"the docs test cannot run `{shlex.join(argv)}`; mark the block with "
                    '<!-- skip: next "reason" --> if it cannot run in CI')


# ---- evaluators -----------------------------------------------------------------------------
def eval_shell(example: Example) -> None:
    sandbox = example.namespace["__sandbox__"]
    for argv in commands(example.parsed):
        run_command(argv, sandbox)


def eval_json(example: Example) -> None:
    text = example.parsed.strip()
    sandbox = example.namespace["__sandbox__"]
    if text.startswith("{"):
        graph = json.loads(text)
        assert graph.get("nodegraph") == 1, "a whole-graph block must carry \"nodegraph\": 1"
        path = sandbox / "graphs" / f"_doc_{example.line}.json"
        path.write_text(text)
        run_command(["nodegraph", "validate", str(path)], sandbox)
        run_command(["nodegraph", "run", str(path)], sandbox)
        return
    fragment = json.loads("{" + text.rstrip(",") + "}")
    if set(fragment) == {"phases"}:
        from nodegraph.train.spec import PhaseSpec

        for ph in fragment["phases"]:
            PhaseSpec(**ph)
        return
    shipped = [json.loads(p.read_text()) for p in sorted((ROOT / "graphs").rglob("*.json"))]
    assert any(_within(fragment, g) for g in shipped), (
        f"this fragment ({', '.join(fragment)}) is not part of any graph in graphs/: update it or the graph")


def _excerpt(doc: Any, real: Any) -> bool:
    """``doc`` shows part of ``real``: the keys it has, with the same values (keys may be left out)."""
    if isinstance(doc, dict):
        return isinstance(real, dict) and all(k in real and _excerpt(v, real[k]) for k, v in doc.items())
    if isinstance(doc, list):
        return isinstance(real, list) and len(doc) == len(real) and all(map(_excerpt, doc, real))
    return doc == real


def _within(fragment: dict[str, Any], tree: Any) -> bool:
    """``fragment`` is an excerpt of some object anywhere in ``tree``."""
    if isinstance(tree, dict):
        return _excerpt(fragment, tree) or any(_within(fragment, v) for v in tree.values())
    return isinstance(tree, list) and any(_within(fragment, v) for v in tree)


def eval_toml(example: Example) -> None:
    tomllib.loads(example.parsed)


def eval_python(example: Example) -> None:
    PythonEvaluator()(example)


SYBIL = Sybil(parsers=[SkipParser(), *(CodeBlockParser(lang, eval_shell) for lang in sorted(RUN_LANGS)),
                       CodeBlockParser("python", eval_python), CodeBlockParser("json", eval_json),
                       CodeBlockParser("toml", eval_toml)])


def _examples() -> list[Any]:
    out = []
    for doc in DOCS:
        if not doc.is_file():
            continue
        parsed = SYBIL.parse(doc)
        rel = doc.relative_to(ROOT).as_posix()
        out += [pytest.param(doc, ex, id=f"{rel}:{ex.line}") for ex in parsed]
    return out


# ---- sandbox --------------------------------------------------------------------------------
_SANDBOXES: dict[Path, Path] = {}
_CACHE: list[Path] = []  # one node cache for every document: the docs run spade_pis.json many times


@pytest.fixture
def sandbox(request, tmp_path_factory, monkeypatch) -> Path:
    doc = request.node.callspec.params["doc"]
    if doc not in _SANDBOXES:
        box = tmp_path_factory.mktemp(doc.stem)
        for d in ("graphs", "examples"):
            shutil.copytree(ROOT / d, box / d)
        (box / "weights").mkdir()
        _SANDBOXES[doc] = box
    box = _SANDBOXES[doc]
    if not _CACHE:
        _CACHE.append(tmp_path_factory.mktemp("cache"))
    monkeypatch.chdir(box)
    monkeypatch.setenv("NODEGRAPH_CACHE", str(_CACHE[0]))
    return box


@pytest.mark.parametrize("doc,example", _examples())
def test_doc_block(doc: Path, example: Example, sandbox: Path) -> None:
    example.namespace["__sandbox__"] = sandbox
    example.evaluate()


@pytest.mark.parametrize("doc", [d for d in DOCS if d.is_file()], ids=lambda d: d.relative_to(ROOT).as_posix())
def test_every_block_says_what_it_is(doc: Path) -> None:
    """A fence with no language (or an unknown one) would silently escape the checks above; a
    skip directive must give its reason."""
    text = doc.read_text()
    opened = False
    for m in FENCE.finditer(text):
        if not opened:
            line = text.count("\n", 0, m.start()) + 1
            assert m.group(2) in KNOWN_LANGS, (
                f"{doc.name}:{line}: fence language {m.group(2)!r}; use one of {sorted(KNOWN_LANGS)}")
        opened = not opened
    for m in re.finditer(r"<!--\s*skip:\s*(next|start)(.*?)-->", text):
        assert m.group(2).strip(), f"{doc.name}: a skip directive without a reason: {m.group(0)}"
