"""Few-shot adaptation (Ojha et al. 2021): the CDC loss against an independent reference, the
anchor subspace, the patch D, Generate, and graphs/fewshot_adapt.json training 3 steps.

Mutants of ``fewshot.cdc_loss`` / ``similarity_rows`` run by hand (runs/fewshot_dev/mut.py, not
committed); each fails test_cdc_matches_reference (max relative error over its cases) and the
random-layer test:
- self-similarity kept (B x B rows, diagonal not removed): 0.65 (also breaks the batch-2 test);
- KL direction swapped (KL(target || source)): 0.012;
- softmax over the batch axis (dim 0) instead of each row: 0.52;
- 'batchmean' (sum / B) instead of the mean over the B (B-1) entries: 4;
- layer 0 (conv1's 4 x 4 map) included: 5.2;
- cosine per pixel over channels instead of over the flattened map: 0.53.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nodegraph
from nodegraph.graph import load_graph
from nodegraph.node import NodeError
from nodegraph.train import train
from nodes.dualdomain.fewshot import PatchDiscriminator, anchor_z, cdc_loss, make_anchors
from nodes.stylegan.discriminator import Discriminator
from nodes.stylegan.net import Generator, StyleGANConfig

from .reference_fewshot import cdc_reference

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


def _features(b: int, seed: int, shapes=((8, 4), (6, 8), (6, 8), (4, 16))) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, c, r, r, generator=g) for c, r in shapes]


def _perturbed(feats: list[torch.Tensor], scale: float, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [f + scale * torch.randn(f.shape, generator=g) for f in feats]


@pytest.mark.parametrize("b", [3, 4, 6])
def test_cdc_matches_reference(b: int) -> None:
    src = _features(b, 0)
    for scale in (0.3, 1.0, 3.0):
        tgt = _perturbed(src, scale, b)
        ours = float(cdc_loss(src, tgt, "all", first=1))
        ref = cdc_reference(src, tgt, first=1)
        assert ref > 0
        assert abs(ours - ref) <= 1e-5 * ref + 1e-9, (scale, ours, ref)


def test_cdc_is_zero_at_batch_two() -> None:
    """One other sample per row: the softmax is 1 whatever the similarity (as officially)."""
    src = _features(2, 0)
    assert float(cdc_loss(src, _perturbed(src, 3.0, 1))) == 0.0 == cdc_reference(src, _perturbed(src, 3.0, 1))


def test_cdc_random_layers_matches_official_rows() -> None:
    b = 4
    src, tgt = _features(b, 1), _perturbed(_features(b, 1), 1.0, 7)
    gen = torch.Generator().manual_seed(5)
    ours = float(cdc_loss(src, tgt, "random", first=1, generator=gen))
    rows = (torch.randint(0, len(src) - 1, (b,), generator=torch.Generator().manual_seed(5)) + 1).tolist()
    ref = cdc_reference(src, tgt, layer_of_row=rows)
    assert abs(ours - ref) <= 1e-5 * ref


def test_cdc_zero_for_same_features_and_grads_to_target_only() -> None:
    src = _features(4, 2)
    assert float(cdc_loss(src, [f.clone() for f in src])) == pytest.approx(0.0, abs=1e-7)
    s = [f.clone().requires_grad_(True) for f in src]
    t = [f.clone().requires_grad_(True) for f in _perturbed(src, 1.0, 3)]
    cdc_loss(s, t).backward()
    assert all(x.grad is None for x in s) and all(x.grad.abs().sum() > 0 for x in t[1:])
    assert t[0].grad is None  # layer 0 is not read
    with pytest.raises(ValueError, match="layer counts differ"):
        cdc_loss(src, src[:-1])
    with pytest.raises(ValueError, match="at least 2"):
        cdc_loss([f[:1] for f in src], [f[:1] for f in src])


def test_cdc_node_errors_name_the_port() -> None:
    node = nodegraph.create("dualdomain.CDC")
    src = _features(4, 0)
    with pytest.raises(NodeError, match="layer counts differ") as e:
        node(source=src, target=src[:3])
    assert "inputs.target" in str(e.value.where)
    with pytest.raises(NodeError, match="at least 2"):
        node(source=[f[:1] for f in src], target=[f[:1] for f in src])


def test_anchor_subspace() -> None:
    anchors = make_anchors(10, 512, 1)
    z = anchor_z(anchors, 64, 0.1, torch.Generator().manual_seed(0))
    d = torch.cdist(z, anchors).min(1).values
    assert torch.allclose(d, torch.full_like(d, 0.1 * 512 ** 0.5), rtol=0.15)  # ~ std sqrt(D) from an anchor
    node = nodegraph.create("dualdomain.AnchorZ", anchors=10, anchor_seed=1, batch=3)
    a, b = node()["z"], node()["z"]
    assert torch.equal(a, b) and a.shape == (3, 512)
    assert torch.equal(node()["anchors"], anchors)


def test_patch_discriminator_taps_and_source_d() -> None:
    cfg = StyleGANConfig(64, channel_multiplier=1, channel_max=16)
    torch.manual_seed(0)
    d = Discriminator(cfg)
    pd = PatchDiscriminator(cfg)
    missing = pd.load_state_dict(d.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("extra.") for k in missing)
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    assert torch.allclose(pd(x), d(x))  # image level = the StyleGAN2 D
    assert pd.patch(x).shape == (4, 1, 32, 32)
    # the official rule at 256 px: the residual-branch maps at 32, 32, 16, 16 (the 512-channel ones)
    big = PatchDiscriminator(StyleGANConfig(256, channel_max=16))
    res = [256 // 2 ** (i - 1) // (2 if which == "conv2" else 1) for i, which, _ in big.taps()]
    assert res == [32, 32, 16, 16] and [w for _, w, _ in big.taps()] == ["conv2", "conv1", "conv2", "conv1"]
    with pytest.raises(ValueError, match="highp"):
        PatchDiscriminator(cfg, highp=5)


def test_generate_matches_the_generator_node() -> None:
    cfg = StyleGANConfig(32, channel_multiplier=1, channel_max=16)
    torch.manual_seed(0)
    net = Generator(cfg).eval()
    z = torch.randn(2, 512)
    node = nodegraph.create("dualdomain.Generate", noise="fixed")
    out = node(model=net, z=z)
    with torch.no_grad():
        ref = net(net.to_wplus(net.mapping(z)))
    assert torch.allclose(out["raw"], ref, atol=1e-6) and len(out["features"]) == 7  # 1 + 2 (log2 32 - 2)
    with pytest.raises(NodeError, match="stylegan.Generator"):
        node(model=torch.nn.Linear(2, 2), z=z)


def test_fewshot_graph_trains_three_steps_and_exports_to_the_run_dir(tmp_path: Path) -> None:
    weights = ROOT / "weights"
    before = {p.name: p.stat().st_mtime_ns for p in weights.iterdir()}
    g = load_graph(ROOT / "graphs" / "fewshot_adapt.json").with_overrides(
        {"train.sample_every": None, "train.samples": [], "train.log_every": 1})
    result = train(g, steps=3, run_dir=tmp_path / "run", progress=False)
    out = result.exported["stylegan2_faces64_sketch"]
    assert out == tmp_path / "run" / "export" / "stylegan2_faces64_sketch.safetensors" and out.is_file()
    entry = json.loads((out.parent / "manifest.json").read_text())["weights"]["stylegan2_faces64_sketch"]
    assert entry["node_type"] == "stylegan.Generator" and entry["provenance"]["steps"] == 3
    assert {"cdc.loss", "g_patch.loss", "g_img.loss", "d_img.loss", "r1.loss"} <= set(result.losses)
    assert {p.name: p.stat().st_mtime_ns for p in weights.iterdir()} == before
    # the export loads as an ordinary generator
    node = nodegraph.create("stylegan.Generator", weights=str(out))
    assert node(z=torch.randn(1, 512))["image"].shape == (1, 3, 64, 64)
