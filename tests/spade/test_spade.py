"""SPADE: semantic input, converter fidelity against an official-layout reference, nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from nodes.common.layers import fold_spectral_norm
from nodes.spade.convert import convert
from nodes.spade.net import PRESETS, SPADEConfig, build_generator, semantic_input
from nodes.spade.net import SPADEGenerator as OurGenerator
from tests.spade.reference import RefGenerator, informative_init, ref_semantics, voronoi

ROOT = Path(__file__).resolve().parents[2]


def _official_checkpoint(tmp_path, preset: str, ngf: int, num_up: str, crop: int, aspect: float = 1.0,
                         use_vae: bool = False, seed: int = 0):
    cfg = PRESETS[preset]
    torch.manual_seed(seed)
    ref = RefGenerator(cfg.semantic_nc, ngf, num_up, crop, aspect, use_vae)
    h, w = round(crop / aspect), crop
    informative_init(ref, cfg.semantic_nc, cfg.label_nc, cfg.dontcare, cfg.instance, (h, w), seed + 1)
    path = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    return ref, path, (h, w)


def _inputs(cfg: SPADEConfig, hw: tuple[int, int], seed: int):
    gen = torch.Generator().manual_seed(seed)
    lab = voronoi(1, *hw, 24, cfg.label_nc + int(cfg.dontcare), gen)
    inst = voronoi(1, *hw, 40, 256, gen) if cfg.instance else None
    z = torch.randn(1, 256, generator=gen)
    return lab, inst, z


CASES = [
    # preset, ngf, num_up, crop, aspect, vae
    ("ade20k", 32, "normal", 64, 1.0, False),   # 151 channels (don't care)
    ("coco", 16, "normal", 32, 1.0, False),     # dontcare + instance edges
    ("cityscapes", 16, "more", 128, 2.0, False),  # no dontcare, 'more', aspect 2
    ("cityscapes", 8, "most", 128, 1.0, False),  # up_4 (272 keys)
    ("coco", 16, "normal", 32, 1.0, True),      # VAE: Linear fc + view
]


@pytest.mark.parametrize("preset,ngf,num_up,crop,aspect,vae", CASES)
def test_converted_checkpoint_reproduces_official_generator(tmp_path, preset, ngf, num_up, crop, aspect, vae):
    ref, pth, hw = _official_checkpoint(tmp_path, preset, ngf, num_up, crop, aspect, vae)
    official_keys = ref.state_dict()
    assert len(official_keys) == (272 if num_up == "most" else 234)
    cfg = PRESETS[preset]
    lab, inst, z = _inputs(cfg, hw, seed=7)
    ref_sem = ref_semantics(lab, cfg.label_nc, cfg.dontcare, inst)
    with torch.no_grad():
        want = ref(ref_sem, z if vae else None)

    dst = tmp_path / "g.safetensors"
    summary = convert(str(pth), str(dst), preset=preset, crop_size=crop, num_upsampling_layers=num_up)
    assert summary["source_keys"] == len(official_keys)
    from nodes.spade.nodes import Generator

    node = Generator({"preset": preset, "weights": str(dst)})
    got_sem = semantic_input(lab[:, 0], node.config if hasattr(node, "config") else cfg,
                             None if inst is None else inst[:, 0])
    assert torch.equal(got_sem, ref_sem)  # integer-valued: bitwise
    out = node(labels=lab[:, 0], instance=None if inst is None else inst[:, 0], z=z if vae else None)
    got = out["image"] * 2 - 1
    diff = (got - want).abs()
    assert want.std() > 0.2  # the reference is not saturated / constant
    assert diff.max() <= 1e-4 and diff.mean() <= 1e-5, (diff.max(), diff.mean())


def test_official_parameter_count_and_keys():
    """ade20k at ngf 64: 96,492,483 parameters (incl. weight_orig), 234 keys, 18 BN norms."""
    with torch.device("meta"):
        ref = RefGenerator(151, 64, "normal", 256)
        ours = OurGenerator(PRESETS["ade20k"], use_spectral=True)
    assert sum(p.numel() for p in ref.parameters()) == 96_492_483
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert sum(k.endswith("running_mean") for k in ours.state_dict()) == 18


def test_fold_spectral_norm_matches_eval_hook():
    conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(5, 7, 3))
    conv.train()
    for _ in range(3):
        conv(torch.randn(1, 5, 8, 8))
    conv.eval()
    with torch.no_grad():
        conv(torch.randn(1, 5, 8, 8))
        folded = fold_spectral_norm(dict(conv.state_dict()))
        assert set(folded) == {"weight", "bias"}
        assert torch.allclose(folded["weight"], conv.weight, atol=1e-7)
    # exact SVD sigma would differ: the stored u, v are what eval uses
    sv = torch.linalg.matrix_norm(conv.weight_orig.reshape(7, -1), 2)
    assert not torch.allclose(conv.weight_orig / sv, folded["weight"], atol=1e-6)


def test_semantic_input_edges_and_errors():
    cfg = SPADEConfig(label_nc=3, dontcare=True, instance=True)
    lab = torch.tensor([[[0, 1, 3], [2, 2, 0]]])
    inst = torch.tensor([[[5, 5, 6], [5, 5, 5]]])
    sem = semantic_input(lab, cfg, inst)
    assert sem.shape == (1, 5, 2, 3)
    assert sem[0, 3, 0, 2] == 1  # id 3 = don't care channel
    edge = sem[0, 4]
    assert edge.tolist() == [[0, 1, 1], [0, 0, 1]]
    with pytest.raises(ValueError, match="0..3"):
        semantic_input(torch.tensor([[[4]]]), cfg, inst[:, :1, :1])
    with pytest.raises(ValueError, match="instance"):
        semantic_input(lab, cfg, None)


def test_converter_metadata_and_bad_preset(tmp_path):
    ref, pth, _ = _official_checkpoint(tmp_path, "coco", 8, "normal", 32)
    dst = tmp_path / "c.safetensors"
    convert(str(pth), str(dst), preset="coco")
    with safe_open(str(dst), "pt") as f:
        meta = f.metadata()
        assert "head_0.conv_0.weight" in f.keys() and "head_0.conv_0.weight_orig" not in f.keys()
    cfg = SPADEConfig.from_json(meta["config"])
    assert (cfg.ngf, cfg.semantic_nc, cfg.label_set) == (8, 184, "coco")
    with pytest.raises(ValueError, match="semantic channels"):
        convert(str(pth), str(tmp_path / "x.safetensors"), preset="ade20k")


def test_build_generator_from_training_state():
    """A spectral-normed training generator exports to the folded inference form."""
    cfg = SPADEConfig(label_nc=4, ngf=8, crop_size=0, nhidden=16)
    g = OurGenerator(cfg, use_spectral=True)
    g.train()
    seg = semantic_input(torch.randint(0, 4, (2, 32, 32)), cfg)
    g(seg)
    g.eval()
    with torch.no_grad():
        want = g(seg)
        net = build_generator(g.state_dict(), cfg)
        assert torch.allclose(net(seg), want, atol=1e-5)


def test_nodes_landscape_random_init_and_discriminator():
    from nodes.spade.nodes import Discriminator, Generator, StyleEncoder

    g = Generator({"preset": "landscape", "ngf": 4})
    g.ctx.emit = lambda *a, **k: None
    lab = torch.randint(0, 10, (2, 32, 32))
    img = g(labels=lab)["image"]
    assert img.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="multiple of 32"):
        g(labels=torch.zeros(1, 40, 40, dtype=torch.long))
    d = Discriminator({"preset": "landscape", "ndf": 8, "num_D": 2})
    out = d(fake=img, real=img, labels=lab)
    assert len(out["fake"]) == 2 and len(out["fake"][0]) == 5
    assert torch.allclose(out["fake"][0][-1], out["real"][0][-1])
    e = StyleEncoder({"ngf": 4, "z_dim": 8, "input_size": 32})
    z = e(image=img)
    assert z["mu"].shape == (2, 8) and z["z"].shape == (2, 8)


def test_params_that_contradict_the_weights_are_named(tmp_path):
    from nodes.spade.nodes import Generator

    cfg = SPADEConfig(label_nc=10, label_set="landscape", ngf=8, crop_size=0, nhidden=16)
    from safetensors.torch import save_file

    save_file(OurGenerator(cfg).state_dict(), str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match="params.ngf"):
        Generator({"preset": "landscape", "ngf": 16, "weights": str(tmp_path / "w.safetensors")})(
            labels=torch.zeros(1, 32, 32, dtype=torch.long))
    out = Generator({"preset": "landscape", "weights": str(tmp_path / "w.safetensors")})(
        labels=torch.zeros(1, 64, 64, dtype=torch.long))
    assert out["image"].shape == (1, 3, 64, 64)


def test_train_graph_validates():
    from pathlib import Path

    import nodegraph

    nodegraph.load_graph(Path(__file__).resolve().parents[2] / "graphs/spade_train.json").check()


def test_default_vae_generator_follows_the_style_picture():
    """spade_landscape_vae + spade_landscape_encoder: the style picture steers the colours -- a
    sunset picture gives a warmer, darker rendering of the same map than a misty one, and the
    same picture gives the same output (z from the seeded posterior sample)."""
    import nodegraph

    ex = ROOT / "examples"
    lab = nodegraph.create("io.LoadLabelMap", path=str(ex / "landscape_01.png"), label_set="landscape",
                           tolerance=40)()["labels"]
    gen = nodegraph.create("spade.Generator", preset="landscape", weights="spade_landscape_vae",
                           encoder_weights="spade_landscape_encoder", size=128)
    out = {}
    for t in ("sunset", "misty"):
        style = nodegraph.create("io.LoadImage", path=str(ex / f"landscape_style_{t}.png"))()["image"]
        out[t] = gen(labels=lab, style=style)["image"]
        assert torch.equal(out[t], gen(labels=lab, style=style)["image"])
    warm = {t: float(o[:, 0].mean() - o[:, 2].mean()) for t, o in out.items()}
    bright = {t: float(o.mean()) for t, o in out.items()}
    assert warm["sunset"] > warm["misty"] + 0.05, warm
    assert bright["sunset"] < bright["misty"] - 0.05, bright
    with pytest.raises(ValueError, match="encoder_weights"):
        nodegraph.create("spade.Generator", preset="landscape", weights="spade_landscape_vae",
                         size=128)(labels=lab, style=style)
