"""Mask-guided portrait editing: network shapes, placement, losses without the official bugs,
the nodes and the training graph (small sizes; the official 256 px shapes where affordable)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import nodes.portrait.nodes as P
from nodegraph import weights as W
from nodegraph.graph import load_graph
from nodes.face.geometry import component_centres, crop_components
from nodes.face.nodes import ComponentCrop
from nodes.portrait.blocks import ResnetBlock
from nodes.portrait.model import Batch, MaskGuidedFramework
from nodes.portrait.net import (
    PARTS,
    LocalAutoencoder,
    MaskEncoderNet,
    MaskGuidedGenerator,
    PortraitConfig,
    discriminator,
    one_hot,
    place_features,
)

ROOT = Path(__file__).resolve().parents[2]


def _faces(n: int = 2, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    from nodes.data.portraits import ProceduralPortraits

    ds = ProceduralPortraits(n, size, seed=123)
    items = [ds[i] for i in range(n)]
    return torch.stack([it["image"] for it in items]), torch.stack([it["labels"] for it in items])


# ---- networks -------------------------------------------------------------------------------
def test_official_eye_autoencoder_shapes():
    """256 px: eye crop 32x48 -> 512 x 2 x 3 bottleneck, 512-d z, 256 x 8 x 12 feature, 32x48 image."""
    cfg = PortraitConfig()
    ae = LocalAutoencoder("l_eye", cfg).eval()
    x = torch.randn(1, 3, 32, 48)
    assert ae.encoder(x).shape == (1, 512, 2, 3)
    mu, logvar = ae.encode(x)
    assert mu.shape == (1, 512) and logvar is None
    assert ae.decode_feature(mu).shape == (1, 256, 8, 12)
    assert ae.decode_image(mu).shape == (1, 3, 32, 48)
    assert [m.out_channels for m in ae.encoder.modules() if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512]


def test_official_mask_encoder_and_generator_shapes():
    cfg = PortraitConfig()
    me, gm = MaskEncoderNet(cfg).eval(), MaskGuidedGenerator(cfg).eval()
    f = me(one_hot(torch.zeros(1, 256, 256, dtype=torch.long)))
    assert f.shape == (1, 256, 64, 64)
    assert gm.net[0].in_channels == 1536  # [E_m 256, l_eye, r_eye, skin, hair, mouth]
    assert sum(isinstance(m, ResnetBlock) for m in gm.modules()) == 9


@pytest.mark.parametrize("size", [64, 128])
def test_small_framework_shapes(size):
    cfg = PortraitConfig.small(size=size)
    model = MaskGuidedFramework(cfg).eval()
    img, lab = _faces(2, size)
    b = Batch.of(img, lab)
    crops, codes, kl = model.encode(b)
    assert codes.shape == (2, 5, cfg.latent) and float(kl) == 0.0
    assert crops["l_eye"].shape[-2:] == cfg.crop_size("l_eye") == (size // 8, size * 3 // 16)
    feats = model.local.decode_features(codes)
    assert feats["mouth"].shape[-2:] == (size * 5 // 64, size * 9 // 64)
    assert feats["skin"].shape[-2:] == (size // 4, size // 4)
    out = model.render(codes, b)
    assert out.shape == (2, 3, size, size) and out.abs().max() <= 1


def test_multi_target_mask_encoder_and_vae():
    cfg = PortraitConfig.small(size=64, mask_encoder="multi", variant="vae")
    model = MaskGuidedFramework(cfg).train()
    assert model.mask_encoder.out_ch == 5 * cfg.feat_ch
    img, lab = _faces(2, 64)
    _, codes, kl = model.encode(Batch.of(img, lab))
    assert float(kl.detach()) > 0
    assert model.render(codes, Batch.of(img, lab)).shape == (2, 3, 64, 64)


def test_local_autoencoder_overfits_one_crop():
    torch.manual_seed(0)
    cfg = PortraitConfig.small(size=128)
    ae = LocalAutoencoder("l_eye", cfg).train()
    img, lab = _faces(1, 128)
    x = crop_components(img, lab, fill=0.5)["l_eye"] * 2 - 1
    opt = torch.optim.Adam(ae.parameters(), 2e-3)
    first = None
    for _ in range(100):
        rec = ae.decode_image(ae.encode(x)[0])
        loss = nn.functional.mse_loss(rec, x)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.02 < first


def test_placement_puts_features_at_the_target_centres():
    cfg = PortraitConfig.small(size=128)
    feats = {p: torch.zeros(1, 4, *cfg.feature_size(p)) for p in PARTS}
    for k, p in enumerate(("l_eye", "r_eye", "mouth")):
        feats[p] += k + 1
    centres = torch.tensor([[[58.0, 50.0], [58.0, 78.0], [92.0, 64.0], [64, 64], [64, 64]]])
    out = place_features(feats, centres, cfg.feat_size)
    assert out.shape == (1, 20, 32, 32)
    for k, (p, ch) in enumerate((("l_eye", 0), ("r_eye", 4), ("mouth", 16))):
        nz = torch.nonzero(out[0, ch] == k + 1)
        h, w = cfg.feature_size(p)
        top, left = nz.min(0).values.tolist()
        assert len(nz) == h * w
        cy, cx = (int(c / 4 + 0.5) for c in centres[0, k].tolist())  # official rounding
        assert (top, left) == (cy - h // 2, cx - w // 2)


def test_placement_is_differentiable_and_clamped():
    feats = {p: torch.ones(1, 2, *PortraitConfig.small(size=64).feature_size(p), requires_grad=True)
             for p in PARTS}
    out = place_features(feats, torch.tensor([[[0.0, 0.0], [63.0, 63.0], [63.0, 0.0], [32, 32], [32, 32]]]), 16)
    out.sum().backward()
    assert all(float(feats[p].grad.sum()) == feats[p].numel() for p in PARTS)


# ---- losses: none of the official bugs ---------------------------------------------------------
def test_parsing_loss_is_a_single_softmax_cross_entropy():
    """The graph's g_parse (loss.CrossEntropy on P_F's logits): a perfect parse costs ~0, where the
    official double softmax floors near 1.54. Mutant: a softmax before the cross-entropy."""
    from nodes.common.losses import CrossEntropyLoss

    labels = torch.randint(0, 11, (2, 8, 8))
    perfect = one_hot(labels) * 30.0
    ce = CrossEntropyLoss()
    assert float(ce(logits=perfect, target=labels)["loss"]) < 1e-6
    logits = torch.randn(2, 11, 8, 8)
    assert torch.allclose(ce(logits=logits, target=labels)["loss"], nn.functional.cross_entropy(logits, labels))


def test_discriminator_returns_raw_logits():
    d = discriminator(PortraitConfig.small(size=64))
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())
    with torch.no_grad():
        outs = d(torch.randn(2, 14, 64, 64) * 5)
    assert len(outs) == 2 and len(outs[0]) == 5
    logits = torch.cat([o[-1].flatten() for o in outs])
    assert float(logits.min()) < 0 or float(logits.max()) > 1  # not squashed into (0, 1)


# ---- nodes ---------------------------------------------------------------------------------------
def _node_pipeline(img, lab, src_idx, tgt_idx, local_codes=None):
    crops = ComponentCrop({})(image=img[src_idx], labels=lab[src_idx])
    tgt = ComponentCrop({"expand": True})(image=img[tgt_idx], labels=lab[tgt_idx])
    torch.manual_seed(0)
    emb = P.LocalEmbedding({"weights": "", "size": 64})
    e = emb(**{p: crops[p] for p in PARTS}) if local_codes is None else emb(codes=local_codes)
    comp = P.FeaturePlacement()(centres=tgt["centres"], **{k: v for k, v in e.items() if k.startswith("feat_")})
    kw = {"weights": "", "size": 64}
    mf = P.MaskEncoder(kw)(labels=tgt["labels"])["features"]
    face = P.Generator(kw)(mask_features=mf, components=comp["components"])["face"]
    bg = P.BackgroundEncoder(kw)(image=img[tgt_idx], labels=lab[tgt_idx])["features"]
    return e, P.FusionGenerator(kw)(face=face, background=bg)["image"]


def test_nodes_chain_with_one_target_and_several_sources():
    img, lab = _faces(3, 64)
    e, out = _node_pipeline(img, lab, slice(0, 3), slice(0, 1))
    assert out.shape == (3, 3, 64, 64) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert e["codes"].shape[:2] == (3, 5) and e["rec_mouth"].shape == (3, 3, 8 * 20 // 8, 36)


def test_local_embedding_reports_wrong_crop_size():
    img, lab = _faces(1, 128)
    crops = ComponentCrop({})(image=img, labels=lab)
    with pytest.raises(Exception, match="crop is"):
        P.LocalEmbedding({"weights": "", "size": 64})(**{p: crops[p] for p in PARTS})


def test_mix_embedding_copies_only_the_chosen_components():
    codes, donor = torch.zeros(1, 5, 8), torch.ones(3, 5, 8)
    out = P.MixEmbedding({"components": ["hair", "mouth"]})(codes=codes, donor=donor)["codes"]
    assert out.shape == (3, 5, 8)
    assert out[:, [PARTS.index("hair"), PARTS.index("mouth")]].eq(1).all()
    assert out[:, [PARTS.index("l_eye"), PARTS.index("r_eye"), PARTS.index("skin")]].eq(0).all()


def test_edit_mask_replaces_a_component():
    _, lab = _faces(2, 64)
    out = P.EditMask({"component": "mouth"})(labels=lab[:1], donor=lab[1:2])["labels"]
    mouth = torch.tensor([7, 8, 9])
    assert torch.equal(torch.isin(out, mouth), torch.isin(lab[1:2], mouth))
    keep = ~torch.isin(lab[:1], mouth) & ~torch.isin(lab[1:2], mouth)
    assert torch.equal(out[keep], lab[:1][keep])


def test_pair_targets_and_split_pairs():
    img, lab = _faces(3, 64)
    pt = P.PairTargets({"shift": 1})(image=img, labels=lab)
    assert pt["image"].shape[0] == 6 and torch.equal(pt["labels"][3], lab[2])
    sp = P.SplitPairs()(image=pt["image"], labels=pt["labels"])
    assert torch.equal(sp["paired_image"], img) and torch.equal(sp["unpaired_labels"], lab.roll(1, 0))
    rolled = P.RollBatch({"shift": 2})(labels=lab)["labels"]
    assert torch.equal(rolled[2], lab[0])


def test_discriminator_node_judges_fake_and_real_with_one_network():
    img, lab = _faces(2, 64)
    d = P.Discriminator({"size": 64})
    out = d(fake=img, real=img, labels=lab)
    assert all(torch.allclose(f, r) for fs, rs in zip(out["fake"], out["real"], strict=True)
               for f, r in zip(fs, rs, strict=True))


def test_weights_load_from_combined_and_per_node_files(tmp_path):
    torch.manual_seed(0)
    model = MaskGuidedFramework(PortraitConfig.small(size=64))
    combined = tmp_path / "combined.safetensors"
    W.save_atomic({f"{k}": v for k, v in model.state_dict().items()}, combined)
    node = P.Generator({"weights": str(combined), "size": 64})
    node.ensure_setup()
    assert torch.equal(node.net.state_dict()["net.0.weight"], model.generator.state_dict()["net.0.weight"])
    single = tmp_path / "gen.safetensors"
    W.save_atomic(model.generator.state_dict(), single)
    node = P.Generator({"weights": str(single), "size": 64})
    node.ensure_setup()
    with pytest.raises(W.WeightsError, match="preset"):
        P.Generator({"weights": str(single), "size": 64, "preset": "official"}).ensure_setup()


def test_official_bugs_are_not_reproduced_in_the_code():
    """P_F's loss takes logits (loss.CrossEntropy), and no portrait module ends in a Sigmoid."""
    graph = json.loads((ROOT / "graphs" / "mask_guided.json").read_text())
    assert graph["nodes"]["g_parse"]["type"] == "loss.CrossEntropy"
    assert graph["nodes"]["g_parse"]["inputs"]["logits"] == "parser.logits"
    assert "parser" not in {n for o in graph["train"]["objectives"].values() for n in o["updates"]}


# ---- graphs ------------------------------------------------------------------------------------
def test_train_graph_runs_two_steps(tmp_path):
    from nodegraph.train import train

    raw = json.loads((ROOT / "graphs" / "mask_guided.json").read_text())
    raw["nodes"]["parser"]["params"]["weights"] = ""
    for nid in ("local", "menc", "gen", "bgenc", "fuse", "d_pair", "d_unpair"):
        raw["nodes"][nid]["params"] = {"weights": "", "size": 64}
    raw["nodes"]["data"]["params"].update(size=64, count=8, batch_size=2)
    raw["nodes"]["parser"]["params"]["size"] = 64
    raw["train"].update(batch_size=2, sample_every=None, checkpoint_every=1000, export={})
    path = tmp_path / "mg.json"
    path.write_text(json.dumps(raw))
    res = train(str(path), steps=2, run_dir=str(tmp_path / "run"), export=False)
    assert res.step == 2
    for k in ("l_global.loss", "g_unpair.loss", "g_parse.loss", "d_unpair_l.loss"):
        assert k in res.losses and math.isfinite(res.losses[k])


def test_train_graph_validates_apart_from_missing_parser_weights():
    g = load_graph(ROOT / "graphs" / "mask_guided.json")
    problems = [str(p) for p in g.validate() if "face_parser_default" not in str(p)]
    assert problems == []


def test_component_centres_shape_used_by_placement():
    _, lab = _faces(2, 64)
    assert component_centres(lab).shape == (2, 5, 2)


def test_application_graph_runs_with_any_weights(tmp_path, monkeypatch):
    """portrait_edit.json end to end (random weights written under the exported names)."""
    import nodegraph
    from nodes.portrait.model import split_state

    torch.manual_seed(0)
    model = MaskGuidedFramework(PortraitConfig.small())
    for prefix, sd in split_state(model).items():
        W.save_atomic(sd, tmp_path / f"mask_guided_{prefix}.safetensors")
    monkeypatch.setenv("NODEGRAPH_WEIGHTS", str(tmp_path))
    out = tmp_path / "sheet.png"
    res = nodegraph.run(ROOT / "graphs" / "portrait_edit.json", overrides={"save.path": str(out)})
    assert out.is_file()
    assert res["m2f_fuse"]["image"].shape == (3, 3, 128, 128)
    assert res["st_fuse"]["image"].shape == (3, 3, 128, 128)
    edited = res["edit"]["labels"]
    assert torch.equal(edited == 10, res["sources"]["labels"] == 10)  # the sources' hair masks
