"""CLI surfaces and third-party plugin discovery."""

from __future__ import annotations

import json
import subprocess
import sys

from nodegraph import registry


def cli(args, env, check=True):
    r = subprocess.run([sys.executable, "-m", "nodegraph.cli", *args], capture_output=True, text=True, env=env)
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


def test_registry_lazy_family_load():
    cls = registry.get("ngtest.Const")
    assert cls.type_name == "ngtest.Const"


def test_nodes_listing_human_and_label_sets(plugin_env):
    r = cli(["nodes", "image."], plugin_env)
    assert "image.Resize" in r.stdout and "param size" in r.stdout
    r = cli(["nodes", "--label-sets", "--json"], plugin_env)
    sets = json.loads(r.stdout)
    assert sets["landscape"]["names"][0] == "sky" and len(sets["celebamask11"]["names"]) == 11


def test_viz_png_svg_dot_with_log_overlay(tmp_path, plugin_env):
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"nodegraph": 1, "nodes": {
        "c": {"type": "ngtest.Const"}, "s": {"type": "ngtest.Scale", "inputs": {"image": "c.image"}},
        "o": {"type": "io.SaveImage", "params": {"path": "o.png"}, "inputs": {"image": "s.image"}}}}))
    log = tmp_path / "log.jsonl"
    cli(["run", str(g), "--log", str(log), "--no-cache", "-q"], plugin_env)
    for ext in ("png", "svg", "dot"):
        cli(["viz", str(g), "-o", str(tmp_path / f"v.{ext}"), "--log", str(log)], plugin_env)
    dot = (tmp_path / "v.dot").read_text()
    assert '"c" -> "s"' in dot and "Image[3ch, 0..1]" in dot and "s" in dot
    svg = (tmp_path / "v.svg").read_text()
    assert svg.startswith("<svg") and "ngtest.Scale" in svg and "s</text>" in svg
    from PIL import Image

    assert Image.open(tmp_path / "v.png").size[0] > 300
    r = cli(["viz", str(g), "-o", str(tmp_path / "v.gif")], plugin_env, check=False)
    assert r.returncode == 1 and "unsupported" in r.stderr


def test_cache_info_and_clear(tmp_path, plugin_env):
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"nodegraph": 1, "nodes": {"c": {"type": "ngtest.Const"}}}))
    cdir = tmp_path / "cache"
    cli(["run", str(g), "--cache-dir", str(cdir), "-q"], plugin_env)
    assert "1 entries" in cli(["cache", "info", "--cache-dir", str(cdir)], plugin_env).stdout
    cli(["cache", "clear", "--cache-dir", str(cdir)], plugin_env)
    assert "0 entries" in cli(["cache", "info", "--cache-dir", str(cdir)], plugin_env).stdout


def test_bad_override_and_missing_graph(tmp_path, plugin_env):
    r = cli(["run", str(tmp_path / "nope.json")], plugin_env, check=False)
    assert r.returncode == 2 and "graph file not found" in r.stderr and "Traceback" not in r.stderr
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"nodegraph": 1, "nodes": {"c": {"type": "ngtest.Const"}}}))
    r = cli(["run", str(g), "--set", "c.value=7", "-q"], plugin_env, check=False)
    assert r.returncode == 2 and "c.params.value" in r.stderr
