"""pis.Encoder + pis.DistillHeads (feature distillation for a PhotoWCT encoder, issue 17) and
graphs/photowct_train.json.

Mutants run by hand and killed (the test that fails):
- heads fed relu3_1 for relu4_1 (a level off) -> test_heads_match_teacher_strides (shape error);
- teacher targets not standardised -> test_loss_is_standardised_mse;
- teacher gradients not cut (targets with grad) -> test_gradients_reach_student_not_teacher;
- export keys prefixed (not the VGGEncoder's) -> test_graph_trains_three_steps_and_exports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import nodegraph
from nodegraph.graph import load_graph
from nodegraph.node import NodeError
from nodegraph.train import train
from nodes.pis.distill import STRIDES, DistillHeads, Encoder, standardise
from nodes.pis.photowct import PhotoWCTNet

ROOT = Path(__file__).resolve().parents[2]


class FakeTeacher(torch.nn.Module):
    """Stands in for features.EfficientNetLite0's model: fixed random convs at strides 2, 4, 8."""

    tap_names = ("s2", "s4", "s8")

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = [torch.randn(c, 3, 1, 1, generator=g) for c in (16, 24, 40)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [F.conv2d(F.avg_pool2d(x, s), w) for s, w in zip((2, 4, 8), self.w, strict=True)]


def _feats(size: int = 32):
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    return x, Encoder({"seed": 3})(image=x)


def test_heads_match_teacher_strides():
    x, f = _feats()
    for k, (name, s) in enumerate(zip(("relu1_1", "relu2_1", "relu3_1", "relu4_1"), STRIDES, strict=True)):
        assert f[name].shape == (2, (32, 64, 128, 256)[k], 32 // s, 32 // s)
    node = DistillHeads()
    node.setup()
    preds = node.net([f[n] for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1")])
    assert [p.shape[1:] for p in preds] == [(16, 16, 16), (16, 16, 16), (24, 8, 8), (40, 4, 4)]


def test_loss_is_standardised_mse():
    x, f = _feats()
    node = DistillHeads()
    out = node(image=x, teacher=FakeTeacher(), **f)
    t = FakeTeacher()(x)
    preds = node.net([f[n] for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1")])
    want = torch.stack([F.mse_loss(p, standardise(t[i])) for p, i in zip(preds, (0, 0, 1, 2), strict=True)])
    assert torch.allclose(out["levels"], want, atol=1e-6) and torch.allclose(out["loss"], want.mean())
    s = standardise(t[2])
    assert torch.allclose(s.mean((0, 2, 3)), torch.zeros(40), atol=1e-5)
    assert torch.allclose(s.std((0, 2, 3)), torch.ones(40), atol=1e-4)


class DetachedTeacher(FakeTeacher):
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return super().forward(x.detach())


def test_gradients_reach_student_not_teacher():
    levels = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    grads = []
    heads = DistillHeads()  # one set of heads for both runs
    for teacher in (FakeTeacher(), DetachedTeacher()):
        x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
        enc = Encoder({"seed": 0})
        enc.setup()
        f = dict(zip(levels, enc.net.encode_levels(x)[1], strict=True))
        heads(image=x, teacher=teacher, **f)["loss"].backward()
        assert float(enc.net.conv1_1.weight.grad.abs().sum()) > 0 and float(enc.net.conv4_1.weight.grad.abs().sum()) > 0
        grads.append(x.grad)
    # the teacher's targets are constants: the image's gradient comes through the student only
    assert torch.allclose(grads[0], grads[1]) and float(grads[0].abs().sum()) > 0


def test_bad_teacher_and_tiny_image():
    x, f = _feats()
    with pytest.raises(NodeError, match="teacher returns taps.*s16"):
        DistillHeads({"taps": ["s2", "s2", "s4", "s16"]})(image=x, teacher=FakeTeacher(), **f)
    with pytest.raises(NodeError, match="at least 8 x 8"):
        Encoder()(image=torch.rand(1, 3, 4, 30))
    with pytest.raises(NodeError, match="cannot follow"):
        DistillHeads({"taps": ["s4", "s2", "s4", "s8"]}).setup()


def test_graph_trains_three_steps_and_exports(tmp_path: Path):
    weights = ROOT / "weights"
    before = {p.name: p.stat().st_mtime_ns for p in weights.iterdir()}
    g = load_graph(ROOT / "graphs" / "photowct_train.json").with_overrides(
        {"data.size": 64, "data.batch_size": 2, "train.log_every": 1})
    result = train(g, steps=3, run_dir=tmp_path / "run", progress=False)
    out = result.exported["photowct_encoder_distilled"]
    assert out.is_file() and torch.isfinite(torch.tensor(result.losses["heads.loss"]))
    entry = json.loads((out.parent / "manifest.json").read_text())["weights"]["photowct_encoder_distilled"]
    assert entry["node_type"] == "pis.Encoder" and entry["provenance"]["steps"] == 3
    assert {p.name: p.stat().st_mtime_ns for p in weights.iterdir()} == before
    # the export is the official e4 layout: it loads into a PhotoWCT network's encoders
    from safetensors.torch import load_file

    sd = load_file(str(out))
    net = PhotoWCTNet((32, 64, 128, 256))
    for k in (1, 2, 3, 4):
        enc = net.encoder(k)
        enc.load_state_dict({n: sd[n] for n in enc.state_dict()}, strict=True)
    node = nodegraph.create("pis.Encoder", weights=str(out))
    assert node(image=torch.rand(1, 3, 16, 16))["relu4_1"].shape == (1, 256, 2, 2)
    # stage 2: decoders trained on the frozen distilled encoder give a PhotoWCT file
    from nodes.pis.train import main as train_decoders

    assert train_decoders(["--encoder", "distilled", "--encoder-weights", str(out), "--steps", "1", "--size", "32",
                           "--batch", "1", "--out", str(tmp_path / "s2")]) == 0
    full = load_file(str(tmp_path / "s2" / "photowct_default.safetensors"))
    assert all(torch.equal(full[f"e4.{k}"], v) for k, v in sd.items())
    wct = nodegraph.create("pis.PhotoWCT", weights=str(tmp_path / "s2" / "photowct_default.safetensors"))
    assert wct(content=torch.rand(1, 3, 32, 32), style=torch.rand(1, 3, 32, 32))["image"].shape == (1, 3, 32, 32)
