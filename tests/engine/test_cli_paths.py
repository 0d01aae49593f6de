"""The command line reads paths as a shell does, and lists what a user needs to paint a map."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from nodegraph.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _graph(folder: Path) -> Path:
    folder.mkdir()
    g = {"nodegraph": 1, "name": "copy", "nodes": {
        "photo": {"type": "io.LoadImage", "params": {"path": "in_graph_folder.png"}},
        "save": {"type": "io.SaveImage", "params": {"path": "out.png"}, "inputs": {"image": "photo.image"}}}}
    (folder / "g.json").write_text(json.dumps(g))
    shutil.copy(ROOT / "examples" / "landscape_01.png", folder / "in_graph_folder.png")
    return folder / "g.json"


def test_set_paths_resolve_against_the_working_directory(tmp_path, monkeypatch):
    """``--set photo.path=mine.png`` is ./mine.png, and ``--set save.path=x.png`` writes ./x.png;
    paths inside the graph file still resolve against its folder.
    Mutant: --set values resolved like the graph's own paths (against the graph's folder)."""
    graph = _graph(tmp_path / "graphs")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "examples" / "landscape_02.png", work / "mine.png")
    monkeypatch.chdir(work)
    res = CliRunner().invoke(main, ["run", str(graph), "--no-cache", "--quiet",
                                    "--set", "photo.path=mine.png", "--set", "save.path=result.png"])
    assert res.exit_code == 0, res.output
    assert (work / "result.png").is_file() and not (graph.parent / "result.png").exists()
    missing = CliRunner().invoke(main, ["validate", str(graph), "--set", "photo.path=in_graph_folder.png"])
    assert missing.exit_code == 2 and str(work / "in_graph_folder.png") in missing.output
    assert CliRunner().invoke(main, ["validate", str(graph)]).exit_code == 0


def test_label_sets_listing_gives_each_class_its_colour():
    """Mutant: the text listing prints names only (the README promised the colours)."""
    res = CliRunner().invoke(main, ["nodes", "--label-sets"])
    assert res.exit_code == 0
    line = next(ln for ln in res.output.splitlines() if ln.startswith("landscape:"))
    assert "0=sky(110,170,230)" in line and "8=tree(20,100,40)" in line
