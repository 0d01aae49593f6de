"""Validation reports every problem at once, each naming node.port or node.params.name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nodegraph.graph import GraphError, graph_from_dict, load_graph


def graph(nodes: dict, tmp_path: Path, **extra) -> object:
    return graph_from_dict({"nodegraph": 1, "nodes": nodes, **extra}, base_dir=tmp_path)


def wheres(g) -> dict[str, str]:
    return {p.where: p.message for p in g.validate()}


def test_valid_graph_has_no_problems(tmp_path):
    g = graph({"c": {"type": "ngtest.Const"}, "s": {"type": "ngtest.Scale", "inputs": {"image": "c.image"}}},
              tmp_path)
    assert g.validate() == []


def test_every_problem_kind_reported_at_once(tmp_path):
    g = graph({
        "c": {"type": "ngtest.Const", "params": {"value": 3.0, "colour": 1}},
        "s": {"type": "ngtest.Scale", "params": {"mode": "div"}, "inputs": {"image": "c.image", "extra": "c.image"}},
        "u": {"type": "ngtest.Nope"},
        "m": {"type": "ngtest.Mean"},
        "f": {"type": "ngtest.WantsFaces", "inputs": {"labels": "l.labels"}},
        "l": {"type": "ngtest.Labels", "params": {"label_set": "landscape"}},
        "t": {"type": "ngtest.Scale", "inputs": {"image": "m.value"}},
        "img": {"type": "io.LoadImage", "params": {"path": "missing.png"}},
        "x": {"type": "ngtest.Scale", "inputs": {"image": "c.nothere"}},
        "y": {"type": "ngtest.Scale", "inputs": {"image": "ghost.image"}},
    }, tmp_path)
    w = wheres(g)
    assert "less than or equal to 1" in w["c.params.value"]
    assert "unknown param" in w["c.params.colour"] and "value" in w["c.params.colour"]
    assert "div" in w["s.params.mode"]
    assert "has no input 'extra'" in w["s.extra"]
    assert "unknown node type 'ngtest.Nope'" in w["u.type"]
    assert "missing required input" in w["m.image"]
    assert "label-set mismatch" in w["f.labels"] and "landscape" in w["f.labels"]
    assert "type mismatch" in w["t.image"] and "Scalar" in w["t.image"]
    assert "file not found" in w["img.params.path"]
    assert "no output 'nothere'" in w["x.image"]
    assert "unknown node 'ghost'" in w["y.image"]
    assert len(w) >= 11


def test_unknown_type_suggests_close_names(tmp_path):
    w = wheres(graph({"r": {"type": "image.Resise"}}, tmp_path))
    assert "did you mean image.Resize" in w["r.type"]


def test_cycle_is_reported(tmp_path):
    g = graph({"a": {"type": "ngtest.Scale", "inputs": {"image": "b.image"}},
               "b": {"type": "ngtest.Scale", "inputs": {"image": "a.image"}}}, tmp_path)
    assert any("cycle" in p.message for p in g.validate())


def test_missing_weights_is_reported(tmp_path):
    g = graph({"c": {"type": "ngtest.Const"},
               "s": {"type": "ngtest.Net", "params": {"weights": "no_such_weights"}, "inputs": {"image": "c.image"}},
               "t": {"type": "ngtest.Net", "params": {"weights": "nothere/w.safetensors"},
                     "inputs": {"image": "c.image"}}}, tmp_path)
    w = wheres(g)
    assert "missing weights" in w["t.params.weights"]
    assert "missing weights" in w["s.params.weights"] and "no_such_weights" in w["s.params.weights"]


def test_malformed_json_names_line(tmp_path):
    p = tmp_path / "g.json"
    p.write_text('{"nodegraph": 1, "nodes": {\n  "a": {"type": "x",}\n}}')
    with pytest.raises(GraphError) as e:
        load_graph(p)
    assert "malformed JSON" in str(e.value) and "line 2" in str(e.value)


def test_structure_errors(tmp_path):
    with pytest.raises(GraphError) as e:
        graph_from_dict({"nodegraph": 1, "nodes": {"a": {"typ": "x"}}})
    assert "a.type" in str(e.value)
    with pytest.raises(GraphError) as e:
        graph_from_dict({"nodegraph": 7, "nodes": {}})
    assert "newer" in str(e.value)
    with pytest.raises(GraphError):
        graph_from_dict({"nodes": {}})


def test_migration_hook_upgrades_old_format(tmp_path, monkeypatch):
    from nodegraph import graph as graph_mod

    def v0_to_v1(raw):
        nodes = {n["id"]: {"type": n["type"], "params": n.get("params", {})} for n in raw["node_list"]}
        return {"nodegraph": 1, "nodes": nodes}

    monkeypatch.setitem(graph_mod.MIGRATIONS, 0, v0_to_v1)
    g = graph_from_dict({"nodegraph": 0, "node_list": [{"id": "c", "type": "ngtest.Const"}]})
    assert list(g.spec.nodes) == ["c"] and g.validate() == []


def test_overrides_apply_and_are_checked(tmp_path):
    g = graph({"c": {"type": "ngtest.Const"}}, tmp_path)
    g2 = g.with_overrides(["c.value=0.25", "c.size=4"])
    assert g2.spec.nodes["c"].params == {"value": 0.25, "size": 4}
    with pytest.raises(GraphError) as e:
        g.with_overrides(["nothere.value=1"])
    assert "no node 'nothere'" in str(e.value)
    assert "c.params.value" in {p.where for p in g.with_overrides(["c.value=9"]).validate()}


def test_override_changes_a_node_type_and_rewires(tmp_path):
    g = graph({"c": {"type": "ngtest.Const", "params": {"value": 0.5, "size": 4}},
               "d": {"type": "ngtest.Const"},
               "s": {"type": "ngtest.Scale", "inputs": {"image": "c.image"}}}, tmp_path)
    # node=Type: params the new type does not declare are dropped and said so; wiring is kept
    g2 = g.with_overrides(["s=ngtest.Mean"])
    assert g2.spec.nodes["s"].type == "ngtest.Mean" and g2.spec.nodes["s"].inputs == {"image": "c.image"}
    g3 = g.with_overrides(["c=ngtest.Labels", "c.label_set=celebamask11"])
    assert g3.spec.nodes["c"].type == "ngtest.Labels" and g3.spec.nodes["c"].params == {"label_set": "celebamask11"}
    assert any("dropped (not declared by ngtest.Labels): size, value" in n for n in g3.notes)
    # the new type's ports are then checked like any other edge
    assert "s.image" in {p.where for p in g3.validate()}
    # rewire and unlink
    g4 = g.with_overrides(["s.inputs.image=d.image"])
    assert g4.spec.nodes["s"].inputs == {"image": "d.image"} and g4.validate() == []
    assert "s.image" in {p.where for p in g.with_overrides({"s.inputs.image": None}).validate()}
    with pytest.raises(GraphError, match="family.Name"):
        g.with_overrides(["c=3"])
    with pytest.raises(GraphError, match="node.port"):
        g.with_overrides(["s.inputs.image=nodot"])
    assert "c.type" in {p.where for p in g.with_overrides(["c=ngtest.Nope"]).validate()}


def test_relative_paths_resolve_against_graph_folder(tmp_path):
    from PIL import Image

    (tmp_path / "sub").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "sub" / "x.png")
    p = tmp_path / "sub" / "g.json"
    p.write_text(json.dumps({"nodegraph": 1, "nodes": {"i": {"type": "io.LoadImage", "params": {"path": "x.png"}}}}))
    g = load_graph(p)
    assert g.validate() == []
    assert g.params_for("i").path == str(tmp_path / "sub" / "x.png")


def test_cli_validate_exit_code_and_no_traceback(tmp_path, plugin_env):
    p = tmp_path / "g.json"
    p.write_text(json.dumps({"nodegraph": 1, "nodes": {
        "c": {"type": "ngtest.Const", "params": {"value": 2}},
        "m": {"type": "ngtest.Mean"}}}))
    r = subprocess.run([sys.executable, "-m", "nodegraph.cli", "validate", str(p)], capture_output=True,
                       text=True, env=plugin_env)
    assert r.returncode == 2
    assert "c.params.value" in r.stderr and "m.image" in r.stderr
    assert "Traceback" not in r.stderr
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"nodegraph": 1, "nodes": {"c": {"type": "ngtest.Const"}}}))
    r = subprocess.run([sys.executable, "-m", "nodegraph.cli", "validate", str(ok)], capture_output=True,
                       text=True, env=plugin_env)
    assert r.returncode == 0, r.stderr


def test_malformed_link_is_a_validation_problem_not_a_crash(tmp_path):
    """A link without a port (``"cimage"`` for ``"c.image"``) is reported at ``s.image`` before
    anything runs, and running the graph raises that GraphError, not a bare AssertionError.
    Mutant killed: the ``src is None`` branch of ``Validator._links`` dropped."""
    from nodegraph.executor import Executor

    g = graph({"c": {"type": "ngtest.Const"}, "s": {"type": "ngtest.Scale", "inputs": {"image": "cimage"}}},
              tmp_path)
    w = wheres(g)
    assert "malformed link 'cimage'" in w["s.image"] and "node.port" in w["s.image"]
    with pytest.raises(GraphError, match="malformed link"):
        Executor(g, device="cpu").run()


def test_node_id_syntax_is_checked(tmp_path):
    """Node ids are names a link can spell: ``"my node"`` or ``"2x"`` are refused, naming the id.
    Mutant killed: the ``_ID.match`` check in ``Validator.run`` dropped."""
    const = {"type": "ngtest.Const"}
    g = graph({"my node": const, "2x": const, "ok_id-2": const}, tmp_path)
    w = wheres(g)
    assert "node ids must start with a letter" in w["my node"] and "2x" in w
    assert "ok_id-2" not in w


def test_requested_outputs_must_name_a_node(tmp_path):
    """``validate(outputs=...)`` (and a graph's own ``outputs``) refuse names of nodes that do not
    exist, at that name. Mutants killed (mutation run, session 5): the check dropped or inverted,
    the node part taken after the dot, ``outputs and spec.outputs`` for ``or``."""
    g = graph({"c": {"type": "ngtest.Const"}}, tmp_path)
    w = {p.where: p.message for p in g.validate(outputs=["ghost.image", "c.image"])}
    assert w == {"ghost.image": "requested output names no node of the graph"}
    g2 = graph({"c": {"type": "ngtest.Const"}}, tmp_path, outputs=["nothere.image"])
    assert [p.where for p in g2.validate()] == ["nothere.image"]


def test_relative_weights_resolve_against_the_graph_folder(tmp_path, monkeypatch):
    """A weights path relative to the graph file is found whatever the working directory.
    Mutant killed: ``weights.resolve(val, None)`` in the validator (resolved against the cwd)."""
    import torch
    from safetensors.torch import save_file

    (tmp_path / "w").mkdir()
    save_file({"weight": torch.zeros(3, 3, 1, 1), "bias": torch.zeros(3)}, str(tmp_path / "w" / "net.safetensors"))
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    g = graph({"c": {"type": "ngtest.Const"},
               "n": {"type": "ngtest.Net", "params": {"weights": "w/net.safetensors"}, "inputs": {"image": "c.image"}}},
              tmp_path)
    assert g.validate() == []


def test_cycle_is_named_by_its_nodes(tmp_path):
    """The cycle problem names the loop ``a -> b -> a``. Mutants killed: the first node not
    repeated at the end, the name replaced by None."""
    g = graph({"a": {"type": "ngtest.Scale", "inputs": {"image": "b.image"}},
               "b": {"type": "ngtest.Scale", "inputs": {"image": "a.image"}}}, tmp_path)
    where = [p.where for p in g.validate() if "cycle" in p.message]
    assert where in (["a -> b -> a"], ["b -> a -> b"])


def test_every_path_param_is_checked_after_an_empty_one(tmp_path):
    """An empty path param (spade.Generator's ``weights``: random init) does not stop the check of
    the next one (``encoder_weights``), and a missing weights file's problem carries the param's
    description. Mutants killed: ``continue`` -> ``break`` on an empty value, the hint dropped."""
    g = graph({"g": {"type": "spade.Generator",
                     "params": {"preset": "landscape", "weights": "", "encoder_weights": "nothere.safetensors"}}},
              tmp_path)
    w = wheres(g)
    assert "missing weights" in w["g.params.encoder_weights"]
    assert "[encoder_weights: " in w["g.params.encoder_weights"]


def test_missing_folder_and_file_name_what_the_user_wrote(tmp_path):
    """A dataset ``root`` that is not a folder is refused at ``node.params.root``; a missing file
    names the path as written in the graph and as resolved. Mutants killed: the ``is_dir`` test
    inverted or given None, the problem's place or message dropped, the written path replaced."""
    (tmp_path / "afile").write_text("x")
    g = graph({"d": {"type": "data.Portraits", "params": {"root": "no_such_folder"}},
               "e": {"type": "data.Portraits", "params": {"root": "."}},
               "img": {"type": "io.LoadImage", "params": {"path": "pics/missing.png"}}}, tmp_path)
    w = wheres(g)
    assert w["d.params.root"].startswith("directory not found: ") and "no_such_folder" in w["d.params.root"]
    assert "e.params.root" not in w
    assert w["img.params.path"].startswith("file not found: pics/missing.png (resolved to ")


def test_label_set_mismatch_says_which_param_selects_the_set(tmp_path):
    """A landscape map wired into an ADE20K SPADE names the knob: ``g.params.preset``. Mutants
    killed: the hint dropped, the knob list inverted, the wrong knob named."""
    from PIL import Image as PILImage

    PILImage.new("RGB", (8, 8), (0, 0, 0)).save(tmp_path / "m.png")
    g = graph({"l": {"type": "io.LoadLabelMap", "params": {"path": "m.png", "label_set": "landscape"}},
               "g": {"type": "spade.Generator", "params": {"preset": "ade20k"}, "inputs": {"labels": "l.labels"}}},
              tmp_path)
    w = wheres(g)
    assert "label-set mismatch" in w["g.labels"] and w["g.labels"].endswith(
        "; g.params.preset selects the label set this node expects")
