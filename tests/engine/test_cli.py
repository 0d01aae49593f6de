"""CLI surfaces and third-party plugin discovery."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from nodegraph import registry


def cli(args, env, check=True):
    """A real `python -m nodegraph.cli` process (entry-point discovery, exit codes, no traceback)."""
    r = subprocess.run([sys.executable, "-m", "nodegraph.cli", *args], capture_output=True, text=True, env=env)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def cli_inproc(args, check=True):
    """The same command in this process (click's runner): no interpreter start-up per call. The
    test plugin is importable here (conftest), so ngtest.* types resolve as in a subprocess."""
    from click.testing import CliRunner

    from nodegraph.cli import main

    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    res = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
    r = Result(res.exit_code, res.stdout, res.stderr)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_plugin_discovered_through_entry_point(plugin_env):
    # The test plugin is installed only as a dist-info with an entry point: nothing imports it by hand.
    r = cli(["nodes", "--json"], plugin_env)
    data = json.loads(r.stdout)
    assert "ngtest.Scale" in data and "io.LoadImage" in data and "image.Grid" in data
    scale = data["ngtest.Scale"]
    assert scale["inputs"]["image"]["type"] == "Image"
    assert scale["params"]["factor"]["default"] == 1.0 and scale["params"]["factor"]["maximum"] == 10.0
    assert "clamped" in scale["doc"]
    without = dict(plugin_env, PYTHONPATH="")
    assert "ngtest.Scale" not in json.loads(cli(["nodes", "--json"], without).stdout)


def test_registry_lazy_family_load(plugin_env):
    """Asking for one type imports its family only (a run imports what its graph uses).
    Mutant: an eager registry that loads every entry point on the first get()."""
    cls = registry.get("ngtest.Const")
    assert cls.type_name == "ngtest.Const"
    code = ("import sys; from nodegraph import registry; registry.get('ngtest.Const'); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('nodes', 'ngtest_plugin')))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=plugin_env,
                            check=True).stdout.split()
    assert any(m.startswith("ngtest_plugin") for m in loaded), loaded
    assert not [m for m in loaded if m.startswith("nodes")], loaded


def test_nodes_listing_human_and_label_sets():
    r = cli_inproc(["nodes", "image."])
    assert "image.Resize" in r.stdout and "param size" in r.stdout
    r = cli_inproc(["nodes", "--label-sets", "--json"])
    sets = json.loads(r.stdout)
    assert sets["landscape"]["names"][0] == "sky" and len(sets["celebamask11"]["names"]) == 11


def test_viz_png_svg_dot_with_log_overlay(tmp_path):
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"nodegraph": 1, "nodes": {
        "c": {"type": "ngtest.Const"}, "s": {"type": "ngtest.Scale", "inputs": {"image": "c.image"}},
        "o": {"type": "io.SaveImage", "params": {"path": "o.png"}, "inputs": {"image": "s.image"}}}}))
    log = tmp_path / "log.jsonl"
    cli_inproc(["run", str(g), "--log", str(log), "--no-cache", "-q"])
    for ext in ("png", "svg", "dot"):
        cli_inproc(["viz", str(g), "-o", str(tmp_path / f"v.{ext}"), "--log", str(log)])
    dot = (tmp_path / "v.dot").read_text()
    assert '"c" -> "s"' in dot and "Image[3ch, 0..1]" in dot and "s" in dot
    svg = (tmp_path / "v.svg").read_text()
    assert svg.startswith("<svg") and "ngtest.Scale" in svg and "s</text>" in svg
    from PIL import Image

    assert Image.open(tmp_path / "v.png").size[0] > 300
    r = cli_inproc(["viz", str(g), "-o", str(tmp_path / "v.gif")], check=False)
    assert r.returncode == 1 and "unsupported" in r.stderr


def test_cache_info_and_clear(tmp_path):
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"nodegraph": 1, "nodes": {"c": {"type": "ngtest.Const"}}}))
    cdir = tmp_path / "cache"
    cli_inproc(["run", str(g), "--cache-dir", str(cdir), "-q"])
    assert "1 entries" in cli_inproc(["cache", "info", "--cache-dir", str(cdir)]).stdout
    cli_inproc(["cache", "clear", "--cache-dir", str(cdir)])
    assert "0 entries" in cli_inproc(["cache", "info", "--cache-dir", str(cdir)]).stdout


def test_bad_override_and_missing_graph(tmp_path, plugin_env):
    r = cli(["run", str(tmp_path / "nope.json")], plugin_env, check=False)
    assert r.returncode == 2 and "graph file not found" in r.stderr and "Traceback" not in r.stderr
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"nodegraph": 1, "nodes": {"c": {"type": "ngtest.Const"}}}))
    r = cli(["run", str(g), "--set", "c.value=7", "-q"], plugin_env, check=False)
    assert r.returncode == 2 and "c.params.value" in r.stderr
