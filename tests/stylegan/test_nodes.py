"""Behaviour of the stylegan.* nodes: parts compose to the whole, clear errors, noise modes.

Mutants seen to fail here: ``Truncate`` ignoring psi (psi-0 test); random noise not drawn from
the seed (seed test); the W+ layer-count check removed (error test: a shape error deep in
synthesis instead of the port message).
"""

from __future__ import annotations

import pytest
import torch

from nodegraph.node import NodeError
from nodes.stylegan import nodes as N
from nodes.stylegan.convert import convert

SMALL = {"size": 32, "channel_max": 32}


@pytest.fixture(scope="module")
def weights(checkpoints, tmp_path_factory):
    path = tmp_path_factory.mktemp("stylegan_n") / "g.safetensors"
    convert(str(checkpoints["convert_weight"]), str(path))  # stores latent_avg
    return str(path)


def test_parts_compose_to_the_generator(weights):
    z = N.SampleZ({"batch": 2, "seed": 1})()["z"]
    w = N.Mapping({"weights": weights})(z=z)["w"]
    w_avg = torch.randn(1, 512)
    wt = N.Truncate({"psi": 0.6})(w=w, w_avg=w_avg)["w"]
    wplus = wt[:, None].expand(-1, 8, -1)
    parts = N.Synthesis({"weights": weights})(wplus=wplus)
    whole = N.Generator({"weights": weights, "truncation": 0.6})(z=z, w_avg=w_avg)
    assert torch.allclose(parts["raw"], whole["raw"], atol=1e-5)


def test_truncation_defaults_to_the_stored_w_avg_and_psi_0_gives_its_image(weights, official):
    _, _, latent_avg = official
    z = torch.randn(2, 512)
    zero = N.Generator({"weights": weights, "truncation": 0.0})(z=z)
    centre = N.Generator({"weights": weights})(w=latent_avg[None].expand(2, -1))
    assert torch.allclose(zero["raw"], centre["raw"], atol=1e-5)
    assert torch.allclose(zero["wplus"], latent_avg.expand(2, 8, -1), atol=1e-6)


def test_features_are_conv1_and_every_styled_conv(weights):
    out = N.Generator({"weights": weights})(z=torch.randn(1, 512))
    shapes = [tuple(f.shape[1:]) for f in out["features"]]
    assert shapes == [(32, 4, 4), (32, 8, 8), (32, 8, 8), (32, 16, 16), (32, 16, 16), (32, 32, 32), (32, 32, 32)]
    assert isinstance(out["model"], torch.nn.Module) and out["model"].n_latent == 8


def test_random_noise_follows_the_seed(weights):
    z = torch.randn(1, 512)
    a = N.Generator({"weights": weights, "noise": "random", "seed": 3})(z=z)["raw"]
    b = N.Generator({"weights": weights, "noise": "random", "seed": 3})(z=z)["raw"]
    c = N.Generator({"weights": weights, "noise": "random", "seed": 4})(z=z)["raw"]
    fixed = N.Generator({"weights": weights})(z=z)["raw"]
    assert torch.equal(a, b)
    assert float((a - c).abs().max()) > 1e-3 and float((a - fixed).abs().max()) > 1e-3


def test_wrong_wplus_layers_names_port_and_n_latent(weights):
    with pytest.raises(NodeError, match=r"wplus has 14 layer codes.*takes 8") as e:
        N.Generator({"weights": weights})(wplus=torch.randn(1, 14, 512))
    assert e.value.where.endswith("inputs.wplus")
    with pytest.raises(NodeError, match="w2 has 14"):
        N.Generator({"weights": weights, "mix_index": 2})(z=torch.randn(1, 512), w2=torch.randn(1, 14, 512))


def test_input_and_param_errors(weights):
    g = N.Generator({"weights": weights})
    with pytest.raises(NodeError, match="exactly one of z / w / wplus"):
        g(z=torch.randn(1, 512), w=torch.randn(1, 512))
    with pytest.raises(NodeError, match="mix_index is None"):
        g(z=torch.randn(1, 512), z2=torch.randn(1, 512))
    with pytest.raises(NodeError, match="needs a second code"):
        N.Generator({"weights": weights, "mix_index": 2})(z=torch.randn(1, 512))
    with pytest.raises(NodeError, match="params.channel_max = 64 but the weights were made with channel_max = 32"):
        N.Generator({"weights": weights, "channel_max": 64})(z=torch.randn(1, 512))
    with pytest.raises(NodeError, match="params.size is needed"):
        N.Generator({})(z=torch.randn(1, 512))


def test_discriminator_checks_size_and_runs_without_weights():
    d = N.Discriminator(SMALL)
    out = d(fake=torch.rand(3, 3, 32, 32))
    assert out["fake"].shape == (3, 1)  # batch 3: stddev groups of 3
    with pytest.raises(NodeError, match="64 x 64; this discriminator takes 32 x 32"):
        d(fake=torch.rand(2, 3, 64, 64))


def test_training_mode_mixing_and_gradients():
    from nodegraph.node import Context

    g = N.Generator({**SMALL, "mix_prob": 1.0}, Context(training=True))
    torch.manual_seed(0)
    out = g(z=torch.randn(2, 512), z2=torch.randn(2, 512))
    assert float(g.net.latent_avg.abs().sum()) > 0  # running w_avg tracked (beta 0.995)
    wp = out["wplus"]
    assert not torch.equal(wp[:, 0], wp[:, -1])  # mixed at a random index
    (grad,) = torch.autograd.grad((out["image"] * torch.randn_like(out["image"])).sum(), wp)
    assert grad.shape == (2, 8, 512) and float(grad.abs().sum()) > 0  # path-length regulariser's gradient


def test_trainer_export_loads_by_name_with_its_config(tmp_path, monkeypatch):
    """What ``nodegraph train`` writes (state_dict + manifest config {"params": node params},
    no file metadata) loads by name, config from the manifest, w_avg from the tracked buffer."""
    from nodegraph import weights as weights_mod
    from nodes.stylegan.net import Generator as Net
    from nodes.stylegan.net import StyleGANConfig

    torch.manual_seed(0)
    net = Net(StyleGANConfig(16, 64, 2, 1, 16))
    net.latent_avg.normal_()
    params = {"size": 16, "style_dim": 64, "n_mlp": 2, "channel_multiplier": 1, "channel_max": 16,
              "weights": "", "noise": "random", "mix_prob": 0.9}
    weights_mod.export("sg_tiny", net.state_dict(), "stylegan.Generator", {"command": "test"}, directory=tmp_path,
                       config={"node_type": "stylegan.Generator", "params": params})
    monkeypatch.setenv("NODEGRAPH_WEIGHTS", str(tmp_path))
    node = N.Generator({"weights": "sg_tiny", "style_dim": 64, "truncation": 0.0})
    out = node(z=torch.randn(2, 64))
    assert out["image"].shape == (2, 3, 16, 16)
    assert torch.allclose(out["wplus"][:, 0], net.latent_avg.expand(2, -1))
