"""The training engine: learning, exact resume, grad-mode inference, NaN stop, DDP parity, CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from click.testing import CliRunner
from safetensors.torch import load_file

import tests.engine.train_helpers  # noqa: F401  (registers ttest.*, toy.*, loss.*, metric.*)
from nodegraph.graph import GraphError, load_graph
from nodegraph.train import Trainer, TrainError, train, train_cli
from nodegraph.train.ckpt import list_checkpoints
from nodegraph.train.data import StreamSampler
from nodegraph.train.spec import ScheduleSpec, parse_train
from nodes.common.toy import make_shapes

ROOT = Path(__file__).resolve().parents[2]
CGAN = ROOT / "graphs" / "tiny_cgan_train.json"
PROBE = Path(__file__).parent / "graphs" / "grad_probe.json"
HELPER = Path(__file__).parent / "train_helpers.py"
TINY = {"data.size": 16, "data.length": 256, "gen.width": 8, "disc.width": 8, "disc.scales": 1,
        "train.batch_size": 8, "train.log_every": 1, "train.sample_every": None, "train.samples": [],
        "train.checkpoint_every": 1000}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny convs: a second thread only adds contention


def tiny_graph(**extra: Any) -> Any:
    return load_graph(CGAN).with_overrides({**TINY, **extra})


def held_out_psnr(gen_node: Any, n: int = 32) -> float:
    items = [make_shapes(i, 99, 16) for i in range(n)]
    labels = torch.stack([it["labels"] for it in items])
    target = torch.stack([it["image"] for it in items])
    with torch.no_grad():
        out = gen_node.net(labels)
    mse = ((out - target) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


def final_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    newest = list_checkpoints(run_dir)[-1]
    return load_file(str(newest.with_suffix(".safetensors")))


def test_tiny_cgan_learns(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    t = Trainer(tiny_graph(**{"train.steps": 300, "train.schedule": {"type": "linear", "start": 200}}),
                run_dir=tmp_path / "run", log=log, export=False, progress=False)
    before = held_out_psnr(t.nodes["gen"])
    result = t.run()
    t.close()
    after = held_out_psnr(t.nodes["gen"])
    steps = [r for r in map(json.loads, log.read_text().splitlines()) if r["event"] == "step"]
    first = sum(r["losses"]["g_l1.loss"] for r in steps[:20]) / 20
    last = sum(r["losses"]["g_l1.loss"] for r in steps[-20:]) / 20
    print(f"held-out PSNR {before:.2f} -> {after:.2f} dB; L1 {first:.4f} -> {last:.4f}; "
          f"train PSNR {result.metrics}")
    assert result.step == 300
    assert last < 0.6 * first
    assert after > before + 6.0
    assert set(result.losses) >= {"G", "D", "g_gan.loss", "d_gan.loss"}


def test_resume_is_exact(tmp_path: Path) -> None:
    g = tiny_graph(**{"train.steps": 8})
    train(g, run_dir=tmp_path / "straight", export=False, progress=False)
    train(g, steps=4, run_dir=tmp_path / "split", export=False, progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "split")] == ["step_00000004.json"]
    r = train(g, run_dir=tmp_path / "split", resume=True, export=False, progress=False)
    assert r.step == 8
    a, b = final_tensors(tmp_path / "straight"), final_tensors(tmp_path / "split")
    assert set(a) == set(b)
    for k in a:
        if k.startswith(("param/", "optim/")):
            assert torch.equal(a[k], b[k]), k


def test_resume_skips_a_damaged_checkpoint(tmp_path: Path, capsys: Any) -> None:
    g = tiny_graph(**{"train.steps": 2, "train.checkpoint_every": 1})
    train(g, run_dir=tmp_path / "r", export=False, progress=False)
    newest = list_checkpoints(tmp_path / "r")[-1].with_suffix(".safetensors")
    newest.write_bytes(newest.read_bytes()[:-10] + b"0123456789")
    r = train(g, steps=3, run_dir=tmp_path / "r", resume=True, export=False, progress=False)
    err = capsys.readouterr().err
    assert "cannot read checkpoint" in err and "step 1)" in err and r.step == 3


def test_existing_run_dir_needs_resume(tmp_path: Path) -> None:
    g = tiny_graph(**{"train.steps": 2})
    train(g, run_dir=tmp_path / "r", export=False, progress=False)
    with pytest.raises(Exception, match="--resume"):
        train(g, run_dir=tmp_path / "r", export=False, progress=False)


def test_resume_refuses_changed_network(tmp_path: Path) -> None:
    train(tiny_graph(**{"train.steps": 2}), run_dir=tmp_path / "r", export=False, progress=False)
    with pytest.raises(GraphError, match=r"gen: its network changed"):
        train(tiny_graph(**{"train.steps": 4, "gen.width": 4}), run_dir=tmp_path / "r", resume=True,
              export=False, progress=False)
    # a changed learning rate is fine: reported, then applied
    r = train(tiny_graph(**{"train.steps": 4, "train.objectives.G.optimizer.lr": 1e-4}),
              run_dir=tmp_path / "r", resume=True, export=False, progress=False)
    assert r.step == 4


def test_grad_mode_inference(tmp_path: Path) -> None:
    t = Trainer(load_graph(PROBE), run_dir=tmp_path / "run", export=False, progress=False)
    frozen, gen = t.nodes["frozen"], t.nodes["gen"]
    assert t.grad_sets["G"] >= {"gen", "disc", "g_gan", "l1"} and "frozen" not in t.grad_sets["G"]
    assert "gen" not in t.grad_sets["D"] and "disc" in t.grad_sets["D"]
    t.run()
    steps = t.spec.steps
    # the frozen parser: computed once per step, without autograd, never receives a gradient
    assert frozen.calls == steps
    assert frozen.saw_grad_mode is False
    assert all(p.grad is None and not p.requires_grad for p in frozen.net.parameters())
    assert not frozen.net.training and gen.net.training
    # G runs once per step (with grad, for objective G); D reuses that fake image, detached:
    # exactly one backward pass reaches G's output per step
    assert gen.grad_calls == steps and gen.nograd_calls == 0
    assert gen.backwards == steps
    t.close()


def test_g_step_does_not_touch_d_grads(tmp_path: Path) -> None:
    never_d = {"train.objectives.D.every": 1000, "train.objectives.D.offset": 1, "train.steps": 1}
    t = Trainer(load_graph(PROBE).with_overrides(never_d),
                run_dir=tmp_path / "run", export=False, progress=False)
    t.run()
    assert all(p.grad is None for p in t.nodes["disc"].net.parameters())
    assert any(p.grad is not None for p in t.nodes["gen"].net.parameters())
    t.close()


def with_nodes(graph: Any, **nodes: Any) -> Any:
    from nodegraph.graph import graph_from_dict

    raw = graph.spec.model_dump()
    raw["nodes"].update(nodes)
    return graph_from_dict(raw, base_dir=PROBE.parent)


def test_static_model_node_runs_once_and_perceptual_trains(tmp_path: Path) -> None:
    g = with_nodes(load_graph(PROBE), feat={"type": "ttest.FeatureNet"},
                   perc={"type": "loss.Perceptual", "inputs": {"a": "gen.image", "b": "data.image",
                                                              "features": "feat.model"}})
    g = g.with_overrides({"train.objectives.G.losses": {"perc.loss": 1.0, "l1.loss": 1.0}})
    t = Trainer(g, run_dir=tmp_path / "run", export=False, progress=False)
    t.run()
    assert "feat" in t.runner.static and t.nodes["feat"].calls == 1
    assert all(p.grad is None for p in t.nodes["feat"].net.parameters())
    assert t.nodes["gen"].backwards == t.spec.steps
    t.close()


def test_two_datasets_and_amp_ignored_on_cpu(tmp_path: Path, capsys: Any) -> None:
    other = {"type": "toy.Shapes", "params": {"length": 32, "size": 16, "seed": 5, "batch_size": 4}}
    g = with_nodes(load_graph(PROBE), other=other)
    raw = g.spec.model_dump()
    raw["nodes"]["disc"]["inputs"]["real"] = "other.image"
    raw["train"].update(dataset=["data", "other"], amp="bf16")
    from nodegraph.graph import graph_from_dict

    t = Trainer(graph_from_dict(raw, base_dir=PROBE.parent), run_dir=tmp_path / "run", export=False,
                progress=False)
    assert "amp=bf16 ignored on cpu" in capsys.readouterr().err
    t.run()
    batch = t.runner.step_cache
    assert batch["data"]["image"].shape == batch["other"]["image"].shape == (4, 3, 16, 16)
    assert not torch.equal(batch["data"]["labels"], batch["other"]["labels"])
    t.close()


def test_loader_workers_give_the_same_batches(tmp_path: Path) -> None:
    ref = train(load_graph(PROBE), run_dir=tmp_path / "w0", export=False, progress=False)
    got = train(load_graph(PROBE).with_overrides({"train.workers": 2}), run_dir=tmp_path / "w2",
                export=False, progress=False)
    assert ref.step == got.step == 3
    a, b = final_tensors(tmp_path / "w0"), final_tensors(tmp_path / "w2")
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("param/"))


def test_nan_loss_stops_with_node_name(tmp_path: Path) -> None:
    g = load_graph(PROBE).with_overrides({"train.steps": 10, "train.checkpoint_every": 2})
    g = with_nodes(g, l1={"type": "ttest.NaNAfter", "params": {"after": 5},
                          "inputs": {"a": "gen.image", "b": "data.image"}})
    with pytest.raises(TrainError, match=r"step 5 in objective G: l1\.loss=nan \(node l1\).*step_00000004"):
        train(g, run_dir=tmp_path / "run", export=False, progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_00000002.json", "step_00000004.json"]


def test_phases_switch_losses_and_objectives() -> None:
    g = load_graph(PROBE).with_overrides({"train.phases": [
        {"every": 2, "offset": 1, "weights": {"G": {"l1.loss": 0}}},
        {"until": 2, "objectives": ["G"]},
    ]})
    spec = parse_train(g)
    assert spec.plan(0) == [("G", {"g_gan.loss": 1.0, "l1.loss": 1.0})]
    assert spec.plan(1) == [("G", {"g_gan.loss": 1.0, "l1.loss": 0.0})]
    assert [n for n, _ in spec.plan(2)] == ["G", "D"]
    assert spec.plan(3)[0][1]["l1.loss"] == 0.0


def test_phase_zero_weight_skips_the_loss_node(tmp_path: Path) -> None:
    g = load_graph(PROBE).with_overrides({"train.steps": 4, "train.phases": [
        {"every": 2, "offset": 1, "weights": {"G": {"l1.loss": 0}}}]})
    t = Trainer(g, run_dir=tmp_path / "run", export=False, progress=False)
    t.run()
    assert t.runner.calls["l1"] == 2 and t.runner.calls["g_gan"] == 4
    t.close()


def test_schedules() -> None:
    lin = ScheduleSpec(type="linear", start=50)
    assert lin.factor(0, 100) == 1.0 and lin.factor(75, 100) == pytest.approx(0.5)
    assert lin.factor(100, 100) == 0.0
    st = ScheduleSpec(type="step", milestones=[10, 20], gamma=0.5)
    assert [st.factor(s, 100) for s in (0, 10, 25)] == [1.0, 0.5, 0.25]
    assert ScheduleSpec(type="step", every=5, gamma=0.1).factor(12, 100) == pytest.approx(0.01)
    assert ScheduleSpec(warmup=4).factor(1, 100) == 0.5


def test_stream_sampler_shards_the_global_batch() -> None:
    one = StreamSampler(10, 4, seed=3)
    r0, r1 = StreamSampler(10, 4, seed=3, rank=0, world=2), StreamSampler(10, 4, seed=3, rank=1, world=2)
    for step in range(6):  # crosses epoch boundaries (10 items, 4 per step)
        assert one.indices(step) == r0.indices(step) + r1.indices(step)
    first_epoch = [i for s in range(5) for i in one.indices(s)][:10]
    assert sorted(first_epoch) == list(range(10))
    assert StreamSampler(10, 4, seed=3, start_step=2).__iter__().__next__() == one.indices(2)


def test_train_section_errors_name_the_place() -> None:
    g = load_graph(PROBE).with_overrides({
        "train.objectives.G.losses": {"gen.image": 1.0, "nope.loss": 1.0},
        "train.objectives.D.updates": ["frozen", "ghost"],
        "train.dataset": "gen",
        "train.export": {"l1": "x"},
    })
    with pytest.raises(GraphError) as e:
        Trainer(g, export=False, progress=False)
    msg = str(e.value)
    for part in ("train.objectives.G.losses.gen.image: gen.image is Image[3ch, 0..1], a loss must be a Scalar",
                 "no node 'nope'", "no node 'ghost'", "gen (ttest.ProbeGen) is not a dataset node",
                 "train.export.l1: this node is not updated by any objective"):
        assert part in msg, msg
    with pytest.raises(GraphError, match="train.steps"):
        parse_train(load_graph(PROBE).with_overrides({"train.steps": 0}))


def test_cli_logs_samples_and_export(tmp_path: Path) -> None:
    run_dir, log, wdir = tmp_path / "run", tmp_path / "log.jsonl", tmp_path / "weights"
    args = [str(CGAN), "--run-dir", str(run_dir), "--log", str(log), "--steps", "4"]
    for k, v in {**TINY, "train.sample_every": 2, "train.samples": ["data.labels", "gen.image", "data.image"],
                 "train.export_dir": str(wdir)}.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    res = CliRunner().invoke(train_cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "train_start" and kinds[-1] == "train_end"
    assert sum(k == "step" for k in kinds) == 4 and "export" in kinds
    assert (run_dir / "samples" / "step_00000004.png").is_file()
    manifest = json.loads((wdir / "manifest.json").read_text())["weights"]["tiny_cgan_G"]
    assert manifest["provenance"]["steps"] == 4
    assert manifest["provenance"]["command"].startswith("nodegraph train ")
    assert "g_l1.loss" in manifest["quality"]["final_losses"]
    assert manifest["config"]["params"]["width"] == 8
    from nodes.common.toy import ToyGenerator

    net = ToyGenerator(4, 8)
    net.load_state_dict(load_file(str(wdir / "tiny_cgan_G.safetensors")))
    # --resume on a finished run exports again without training; the named folder already holds the
    # entry, so that needs --replace (issue 19), and the same bytes keep no "previous" copy
    res = CliRunner().invoke(train_cli, args + ["--resume"], catch_exceptions=False)
    assert res.exit_code == 1 and "--replace" in res.output
    res = CliRunner().invoke(train_cli, args + ["--resume", "--replace"], catch_exceptions=False)
    assert res.exit_code == 0 and "exported tiny_cgan_G" in res.output
    assert sorted(p.name for p in wdir.iterdir()) == ["manifest.json", "tiny_cgan_G.safetensors"]


def _sub_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _set_args(overrides: dict[str, Any]) -> list[str]:
    out = []
    for k, v in overrides.items():
        out += ["--set", f"{k}={json.dumps(v)}"]
    return out


def test_ctrl_c_checkpoints_then_resume_matches(tmp_path: Path) -> None:
    over = {**TINY, "train.steps": 400}
    run_dir, log = tmp_path / "run", tmp_path / "log.jsonl"
    cmd = [sys.executable, str(HELPER), str(CGAN), "--run-dir", str(run_dir), "--log", str(log),
           "--no-export", *_set_args(over)]
    proc = subprocess.Popen(cmd, env=_sub_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if log.exists() and log.read_text().count('"event": "step"') >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    ckpts = list_checkpoints(run_dir)
    assert len(ckpts) == 1, out
    stopped = int(ckpts[0].stem.split("_")[1])
    assert 3 <= stopped < 400
    n = stopped + 3
    train(tiny_graph(**{"train.steps": n}), run_dir=run_dir, resume=True, export=False, progress=False)
    train(tiny_graph(**{"train.steps": n}), run_dir=tmp_path / "ref", export=False, progress=False)
    a, b = final_tensors(run_dir), final_tensors(tmp_path / "ref")
    for k in a:
        if k.startswith(("param/", "optim/")):
            assert torch.equal(a[k], b[k]), k


@pytest.mark.skipif(importlib.util.find_spec("torch.distributed.run") is None or not dist.is_available(),
                    reason="torchrun (torch.distributed) unavailable")
def test_ddp_two_processes_match_one(tmp_path: Path) -> None:
    over = {**TINY, "train.steps": 6, "train.batch_size": 8}
    common = [str(CGAN), "--no-export", *_set_args(over)]
    one = subprocess.run([sys.executable, str(HELPER), *common, "--run-dir", str(tmp_path / "one")],
                         env=_sub_env(), capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(HELPER), *common, "--run-dir", str(tmp_path / "two"),
                          "--log-file", str(tmp_path / "two.jsonl")],
                         env=_sub_env(), capture_output=True, text=True, timeout=180)
    assert two.returncode == 0, two.stderr[-3000:]
    events = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "train_start" and events[0]["world"] == 2
    # only rank 0 writes: one record per step, not two
    assert [e["event"] for e in events].count("step") == 6
    assert sum(e["event"] == "train_start" for e in events) == 1
    a, b = final_tensors(tmp_path / "one"), final_tensors(tmp_path / "two")
    worst = 0.0
    for k in a:
        if k.startswith("param/"):
            worst = max(worst, float((a[k] - b[k]).abs().max()))
    print(f"max |param difference| one vs two processes: {worst:.2e}")
    assert worst < 1e-4
