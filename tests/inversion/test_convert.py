"""Official-layout checkpoints with seeded random weights, converted, reproduce the independent
reference (tests/inversion/reference.py) to 1e-4.

Mutants seen to fail here: the fused up-sampling kernel summed over three shifts instead of four
(generator); the instance norm without mean subtraction; style ``x * s + t`` instead of
``x * (1 + s) + t``; mapping gain sqrt 2 dropped (generator, mapping case); encoder avg-pool before
block 0 too (shape error) and BN eps 1e-3 instead of 1e-5; the VGG input in RGB instead of BGR.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nodes.common.convert import ConversionError
from nodes.inversion.convert import convert_boundary, convert_encoder, convert_generator, convert_vgg16
from nodes.inversion.net import CaffeVGG16, Encoder, EncoderConfig
from nodes.stylegan.v1 import GeneratorV1, StyleGANV1Config
from nodes.stylegan.v1_nodes import load_v1, read_config
from tests.inversion.reference import (
    official_encoder_state,
    official_generator_state,
    official_vgg_state,
    ref_encode,
    ref_mapping,
    ref_synthesis,
    ref_vgg_conv43,
)

TOL = 1e-4


@pytest.fixture(scope="module")
def gen128(tmp_path_factory):
    """128 px (the first fused resolution), 16 channels: official state and converted file."""
    root = tmp_path_factory.mktemp("idinv")
    sd = official_generator_state(128, fmaps_max=16, seed=0)
    src, dst = root / "g.pth", root / "g.safetensors"
    torch.save(sd, src)
    convert_generator(str(src), str(dst))
    return sd, str(dst)


def _loaded(dst: str) -> GeneratorV1:
    return load_v1(load_file(dst), StyleGANV1Config.from_json(read_config(dst))).eval()


def test_generator_synthesis_matches_reference(gen128):
    sd, dst = gen128
    net = _loaded(dst)
    assert net.n_latent == 12 and net.cfg.fmaps_max == 16
    wp = torch.randn(2, 12, 512, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, want = net(wp), ref_synthesis(sd, wp)
    assert got.shape == (2, 3, 128, 128)
    assert (got - want).abs().max() <= TOL
    assert want.std() > 0.05  # not saturated / constant


def test_generator_mapping_and_truncation_match_reference(gen128):
    sd, dst = gen128
    net = _loaded(dst)
    z = torch.randn(3, 512, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        wp = net.mapping(z)
        ref = ref_mapping(sd, z, 12)
        assert (wp - ref).abs().max() <= TOL * max(1.0, ref.abs().max().item())
        t = net.truncate(wp, 0.7, 8)
    avg = sd["truncation.w_avg"]
    want = torch.cat([avg + 0.7 * (ref[:, :8] - avg), ref[:, 8:]], 1)
    assert (t - want).abs().max() <= TOL * max(1.0, want.abs().max().item())


def test_generator_converter_refuses_growing_model_and_wrong_file(tmp_path):
    sd = official_generator_state(16, fmaps_max=8, seed=3)
    sd["synthesis.lod"] = torch.tensor(1.0)
    torch.save(sd, tmp_path / "g.pth")
    with pytest.raises(ConversionError, match="lod"):
        convert_generator(str(tmp_path / "g.pth"), str(tmp_path / "o.safetensors"))
    torch.save({"block0.conv.weight": torch.zeros(1)}, tmp_path / "e.pth")
    with pytest.raises(ConversionError, match="not an IDInvert StyleGAN generator"):
        convert_generator(str(tmp_path / "e.pth"), str(tmp_path / "o.safetensors"))


def test_encoder_matches_reference(tmp_path):
    sd = official_encoder_state(32, base=8, cmax=32, seed=4)
    torch.save(sd, tmp_path / "e.pth")
    convert_encoder(str(tmp_path / "e.pth"), str(tmp_path / "e.safetensors"))
    state = load_file(str(tmp_path / "e.safetensors"))
    net = Encoder(EncoderConfig(32, 512, 8, 32))
    net.load_state_dict(state)
    net.eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        got, want = net(x), ref_encode(sd, x, 8)
    assert got.shape == (2, 8, 512)
    assert (got - want).abs().max() <= TOL * max(1.0, want.abs().max().item())
    assert not net.block0.bn.bn.weight.requires_grad and net.block0.bn.bn.bias.requires_grad


def test_vgg16_matches_reference(tmp_path):
    sd = official_vgg_state(seed=6)
    torch.save(sd, tmp_path / "v.pth")
    convert_vgg16(str(tmp_path / "v.pth"), str(tmp_path / "v.safetensors"))
    net = CaffeVGG16()
    net.load_state_dict(load_file(str(tmp_path / "v.safetensors")))
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        got, want = net(x), ref_vgg_conv43(sd, x * 2 - 1)
    assert got.shape == (1, 512, 4, 4)
    assert (got - want).abs().max() <= TOL * max(1.0, want.abs().max().item())


def test_boundary_dict_npy_read_without_running_pickle(tmp_path):
    b = np.random.default_rng(0).standard_normal((1, 14, 512)).astype(np.float32)
    np.save(tmp_path / "age.npy", {"boundary": b, "meta_data": {"manipulate_layers": [0, 1, 2]}})
    convert_boundary(str(tmp_path / "age.npy"), str(tmp_path / "age.safetensors"))
    out = load_file(str(tmp_path / "age.safetensors"))
    assert torch.equal(out["boundary"], torch.from_numpy(b))
    np.save(tmp_path / "plain.npy", b[:, 0])
    convert_boundary(str(tmp_path / "plain.npy"), str(tmp_path / "plain.safetensors"))
    assert load_file(str(tmp_path / "plain.safetensors"))["boundary"].shape == (1, 512)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_boundary_with_foreign_global_is_refused(tmp_path, capsys):
    arr = np.empty((), dtype=object)
    arr[()] = {"boundary": _Evil()}
    np.save(tmp_path / "evil.npy", arr, allow_pickle=True)
    with pytest.raises(ConversionError, match="builtins.print"):
        convert_boundary(str(tmp_path / "evil.npy"), str(tmp_path / "o.safetensors"))
    assert "pwned" not in capsys.readouterr().out
    assert pickle  # the module under test never calls pickle.load on untrusted data
