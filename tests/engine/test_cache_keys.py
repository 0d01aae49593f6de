"""The cache key covers everything that decides a node's output: its code (a digest of its module
and the same-package modules it imports), its hand-kept version, its type, its params and
which upstream output port feeds it. Each test names the mutant of ``Executor.key_of`` /
``cache.make_key`` it kills."""

from __future__ import annotations

import importlib
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image as PILImage

from nodegraph import registry
from nodegraph.cache import Cache
from nodegraph.codeversion import code_digest
from nodegraph.events import EventBus
from nodegraph.executor import Executor
from nodegraph.graph import graph_from_dict


def _png(tmp_path: Path) -> None:
    PILImage.fromarray((np.random.RandomState(0).rand(8, 8, 3) * 255).astype(np.uint8)).save(tmp_path / "in.png")


def run(raw: dict, tmp_path: Path, cache_dir: Path, overrides=None):
    g = graph_from_dict(raw, base_dir=tmp_path).with_overrides(overrides)
    bus = EventBus()
    res = Executor(g, device="cpu", cache=Cache(disk_dir=cache_dir), events=bus).run()
    return res, bus.history


def computed(history) -> list[str]:
    return sorted(e["node"] for e in history if e["event"] == "done")


def reason(history, node: str) -> str:
    return next(e["reason"] for e in history if e["event"] == "start" and e["node"] == node)


def pair(tmp_path: Path) -> dict:
    _png(tmp_path)
    return {"nodegraph": 1, "nodes": {
        "img": {"type": "io.LoadImage", "params": {"path": "in.png"}},
        "split": {"type": "ngtest.Split", "inputs": {"image": "img.image"}},
        "a": {"type": "ngtest.Scale", "params": {"factor": 0.1, "mode": "add"}, "inputs": {"image": "split.left"}},
    }}


def test_version_bump_misses(tmp_path, cache_dir, monkeypatch):
    """Mutant killed: ``make_key`` without ``version`` (a deliberate bump would serve the old
    result)."""
    from ngtest_plugin import Scale

    raw = pair(tmp_path)
    run(raw, tmp_path, cache_dir)
    monkeypatch.setattr(Scale, "version", "2")
    _, h = run(raw, tmp_path, cache_dir)
    assert computed(h) == ["a"]
    assert "node code changed" in reason(h, "a")


def test_type_switch_with_equal_params_misses(tmp_path, cache_dir):
    """Mutant killed: ``make_key`` without the node type. ``ngtest.Offset`` has the same params and
    ports as ``ngtest.Scale`` and lives in the same module (same code digest), so only the type
    tells the two keys apart after ``--set a=ngtest.Offset``."""
    raw = pair(tmp_path)
    r1, _ = run(raw, tmp_path, cache_dir)
    r2, h = run(raw, tmp_path, cache_dir, overrides={"a": "ngtest.Offset"})
    assert computed(h) == ["a"]
    assert not torch.equal(r1["a"]["image"], r2["a"]["image"])


def test_rewiring_to_another_port_of_the_same_node_misses(tmp_path, cache_dir):
    """Mutant killed: upstream keys without the output port (``upstream[port] = keys[src]``):
    rewiring ``split.left`` -> ``split.right`` (as ``crop.l_eye`` -> ``crop.r_eye``) would serve
    the left half's result."""
    raw = pair(tmp_path)
    r1, _ = run(raw, tmp_path, cache_dir)
    r2, h = run(raw, tmp_path, cache_dir, overrides={"a.inputs.image": "split.right"})
    assert computed(h) == ["a"]
    assert "upstream changed: image" in reason(h, "a")
    assert torch.equal(r2["a"]["image"], r2["split"]["right"].add(0.1).clamp(0, 1))
    assert not torch.equal(r1["a"]["image"], r2["a"]["image"])


# ---- the code digest ----------------------------------------------------------------------------
PLUGIN_NODES = '''
from typing import Any
from nodegraph.node import Node, Params
from nodegraph.registry import register
from nodegraph.types import Image
from .helper import shade


@register("codetest.Shade")
class Shade(Node):
    """image -> shade(image)."""

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def forward(self, image) -> dict[str, Any]:
        return {"image": shade(image)}
'''


def _write_plugin(root: Path, body: str) -> None:
    pkg = root / "codetest_plugin"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "nodes.py").write_text(textwrap.dedent(PLUGIN_NODES))
    (pkg / "helper.py").write_text(textwrap.dedent(body))
    # a new mtime even on filesystems with coarse timestamps
    t = time.time() + 10 * len(body)
    import os

    os.utime(pkg / "helper.py", (t, t))


def _import_plugin(root: Path):
    for name in [m for m in sys.modules if m.startswith("codetest_plugin")]:
        del sys.modules[name]
    registry._TYPES.pop("codetest.Shade", None)
    importlib.invalidate_caches()
    return importlib.import_module("codetest_plugin.nodes")


@pytest.fixture
def codetest(tmp_path, monkeypatch):
    root = tmp_path / "plugin"
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in [m for m in sys.modules if m.startswith("codetest_plugin")]:
        del sys.modules[name]
    registry._TYPES.pop("codetest.Shade", None)


def test_changed_code_in_an_imported_module_misses(tmp_path, cache_dir, codetest):
    """Issue 19 §5: the same graph and disk cache after the node's code changed (here a helper
    module the node imports, the way a family's node imports its network module) computes the
    node again and gets the new result, instead of serving the old one.
    Mutant killed: the key without the code digest (``version`` alone, never bumped)."""
    _png(tmp_path)
    raw = {"nodegraph": 1, "nodes": {
        "img": {"type": "io.LoadImage", "params": {"path": "in.png"}},
        "s": {"type": "codetest.Shade", "inputs": {"image": "img.image"}},
    }}
    _write_plugin(codetest, "def shade(x):\n    return x * 0.5\n")
    mod = _import_plugin(codetest)
    d1 = code_digest(mod.Shade)
    r1, _ = run(raw, tmp_path, cache_dir)
    _, h = run(raw, tmp_path, cache_dir)
    assert computed(h) == []  # unchanged code: served from the cache

    _write_plugin(codetest, "def shade(x):\n    # a comment and a docstring change nothing\n    return x * 0.5\n")
    mod = _import_plugin(codetest)
    assert code_digest(mod.Shade) == d1

    _write_plugin(codetest, "def shade(x):\n    return x * 0.25\n")
    mod = _import_plugin(codetest)
    assert code_digest(mod.Shade) != d1
    r2, h = run(raw, tmp_path, cache_dir)
    assert computed(h) == ["s"]
    assert "node code changed" in reason(h, "s")
    assert torch.allclose(r2["s"]["image"], r1["img"]["image"] * 0.25)


def test_cache_lists_and_prunes_entries_of_code_that_no_longer_exists(tmp_path, cache_dir, codetest):
    """``nodegraph cache list`` tells current entries from stale ones (code changed, or a node type
    that is gone) and ``nodegraph cache prune`` removes only the stale ones."""
    from nodegraph.cli import main

    _png(tmp_path)
    raw = {"nodegraph": 1, "nodes": {
        "img": {"type": "io.LoadImage", "params": {"path": "in.png"}},
        "s": {"type": "codetest.Shade", "inputs": {"image": "img.image"}},
    }}
    _write_plugin(codetest, "def shade(x):\n    return x * 0.5\n")
    _import_plugin(codetest)
    run(raw, tmp_path, cache_dir)
    _write_plugin(codetest, "def shade(x):\n    return x * 0.75\n")
    _import_plugin(codetest)
    run(raw, tmp_path, cache_dir)
    assert Cache(disk_dir=cache_dir).disk_usage()[0] == 3
    res = CliRunner().invoke(main, ["cache", "list", "--cache-dir", str(cache_dir)])
    assert res.exit_code == 0, res.output
    assert "codetest.Shade" in res.output and "1 stale" in res.output
    res = CliRunner().invoke(main, ["cache", "prune", "--cache-dir", str(cache_dir)])
    assert res.exit_code == 0, res.output
    assert "removed 1" in res.output
    assert Cache(disk_dir=cache_dir).disk_usage()[0] == 2
    _, h = run(raw, tmp_path, cache_dir)
    assert computed(h) == []  # the current entries survived


def test_a_damaged_entry_is_explained_as_such(tmp_path, cache_dir):
    """A corrupted disk entry is a miss, removed, and the node's reason says so (it said "first
    run" when no explain record existed)."""
    raw = pair(tmp_path)
    run(raw, tmp_path, cache_dir)
    entries = sorted(cache_dir.rglob("*.safetensors"))
    for p in entries:
        p.write_bytes(b"\x00garbage")
    for p in (cache_dir / "explain").glob("*.json"):  # no record of earlier runs either
        p.unlink()
    _, h = run(raw, tmp_path, cache_dir)
    assert computed(h) == ["a", "img", "split"]
    assert all("could not be read" in reason(h, n) for n in ("a", "img", "split"))


def test_key_does_not_depend_on_param_order_or_spacing():
    """The same params in another order give the same key (a graph rewritten by an editor must
    not miss its cache); any changed value gives another. Mutants killed (mutation run, session
    5): ``sort_keys`` off in ``canonical``, the key field names changed."""
    from nodegraph.cache import canonical, make_key

    a = make_key("t.X", "1", {"a": 1, "b": [2, 3]}, {"w": "h"}, "f", {"in": "k"}, "c")
    b = make_key("t.X", "1", {"b": [2, 3], "a": 1}, {"w": "h"}, "f", {"in": "k"}, "c")
    assert a == b
    assert a != make_key("t.X", "1", {"a": 2, "b": [2, 3]}, {"w": "h"}, "f", {"in": "k"}, "c")
    assert canonical({"b": 1, "a": {"d": 2, "c": 3}}) == '{"a":{"c":3,"d":2},"b":1}'


def test_ram_tier_keeps_exact_accounts_and_evicts_the_oldest():
    """RAM use is the sum of the entries held; re-putting a key replaces it; over the budget the
    least recently stored entries go first; an entry larger than the budget is not held. Mutants
    killed: ``-=`` as ``=`` / ``+=`` on replacement, ``>=`` for ``>``, eviction of the newest,
    list outputs counted as nothing."""
    import torch

    from nodegraph.cache import Cache, nbytes

    c = Cache(ram_bytes=1000, disk_dir=None)
    t = lambda n: {"x": torch.zeros(n, dtype=torch.uint8)}  # noqa: E731
    c.put("a", t(400), disk=False)
    c.put("b", t(300), disk=False)
    assert c.ram_used == 700
    c.put("a", t(100), disk=False)  # replaced: 100 + 300
    assert c.ram_used == 400
    c.put("c", t(500), disk=False)  # 900: still within budget
    assert c.ram_used == 900 and c.get("b")[1] == "ram"
    c.put("d", t(1000), disk=False)  # exactly the budget: held, everything older evicted
    assert c.ram_used == 1000 and c.get("a")[0] is None and c.get("d")[1] == "ram"
    c.put("e", t(1001), disk=False)  # larger than the budget: not held
    assert c.get("e")[0] is None and c.ram_used == 1000
    assert nbytes({"l": [torch.zeros(10, dtype=torch.uint8), torch.zeros(6, dtype=torch.uint8)]}) == 16


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    """NODEGRAPH_CACHE names the folder; otherwise XDG_CACHE_HOME/nodegraph. Mutants killed: the
    variable ignored or misspelt."""
    from nodegraph.cache import default_cache_dir

    monkeypatch.setenv("NODEGRAPH_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("NODEGRAPH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "nodegraph"
