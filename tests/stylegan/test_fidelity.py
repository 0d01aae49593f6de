"""Converted official-layout weights through ``stylegan.Generator`` / ``stylegan.Discriminator``
reproduce the independent reference (tests/stylegan/reference.py) to 1e-4 on the raw output.

Mutants seen to fail here (each breaks every generator case unless noted): demodulation by
sum |s| w^2 instead of sum s^2 w^2; the ToRGB skip upsampled with pad (1, 2) instead of (2, 1); the noise
added after the activation; mapping lr_mul 1 instead of 0.01; truncation around 0 instead of
w_avg (truncation case only); the mixing index off by one (mixing case only); the minibatch
stddev over the whole batch instead of groups of 4 (discriminator case).
"""

from __future__ import annotations

import pytest
import torch

from nodes.stylegan import nodes as N
from nodes.stylegan.convert import convert
from tests.stylegan.reference import ref_discriminate, ref_generate

SIZE = 32
N_LATENT = 8
TOL = 1e-4


@pytest.fixture(scope="module")
def weights(checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("stylegan_w")
    g, d = root / "g.safetensors", root / "d.safetensors"
    convert(str(checkpoints["train"]), str(g))
    convert(str(checkpoints["train"]), str(d), which="d")
    return str(g), str(d)


@pytest.fixture(scope="module")
def codes():
    gen = torch.Generator().manual_seed(7)
    return {"z": torch.randn(2, 512, generator=gen), "z2": torch.randn(2, 512, generator=gen),
            "wplus": torch.randn(2, N_LATENT, 512, generator=gen),
            "w_avg": torch.randn(1, 512, generator=gen) * 0.3}


def _close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    assert ours.shape == ref.shape
    assert float(ref.std()) > 0.1  # a flat output would compare trivially
    err = float((ours - ref).abs().max())
    assert err <= TOL, err


def test_z_input(weights, official, codes):
    out = N.Generator({"weights": weights[0]})(z=codes["z"])
    ref, latent = ref_generate(official[0], SIZE, [codes["z"]])
    _close(out["raw"], ref)
    _close(out["wplus"], latent)
    assert torch.allclose(out["image"], ((ref + 1) / 2).clamp(0, 1), atol=TOL)


def test_w_input(weights, official, codes):
    w = N.Mapping({"weights": weights[0]})(z=codes["z"])["w"]
    out = N.Generator({"weights": weights[0]})(w=w)
    ref, _ = ref_generate(official[0], SIZE, [w], input_is_latent=True)
    _close(out["raw"], ref)


def test_wplus_input(weights, official, codes):
    out = N.Synthesis({"weights": weights[0]})(wplus=codes["wplus"])
    ref, _ = ref_generate(official[0], SIZE, [codes["wplus"]], input_is_latent=True)
    _close(out["raw"], ref)
    _close(N.Generator({"weights": weights[0]})(wplus=codes["wplus"])["raw"], ref)


def test_truncation_around_given_w_avg(weights, official, codes):
    out = N.Generator({"weights": weights[0], "truncation": 0.7})(z=codes["z"], w_avg=codes["w_avg"])
    ref, _ = ref_generate(official[0], SIZE, [codes["z"]], truncation=0.7, truncation_latent=codes["w_avg"])
    _close(out["raw"], ref)


def test_style_mixing_at_index(weights, official, codes):
    out = N.Generator({"weights": weights[0], "mix_index": 3})(z=codes["z"], z2=codes["z2"])
    ref, latent = ref_generate(official[0], SIZE, [codes["z"], codes["z2"]], inject_index=3)
    _close(out["raw"], ref)
    _close(out["wplus"], latent)


def test_truncated_mixing(weights, official, codes):
    out = N.Generator({"weights": weights[0], "mix_index": 5, "truncation": 0.5})(
        z=codes["z"], z2=codes["z2"], w_avg=codes["w_avg"])
    ref, _ = ref_generate(official[0], SIZE, [codes["z"], codes["z2"]], inject_index=5, truncation=0.5,
                          truncation_latent=codes["w_avg"])
    _close(out["raw"], ref)


def test_discriminator_fake_and_real(weights, official):
    gen = torch.Generator().manual_seed(3)
    fake, real = torch.rand(8, 3, SIZE, SIZE, generator=gen), torch.rand(8, 3, SIZE, SIZE, generator=gen)  # 2 groups
    out = N.Discriminator({"weights": weights[1]})(fake=fake, real=real)
    for name, x in (("fake", fake), ("real", real)):
        ref = ref_discriminate(official[1], SIZE, x * 2 - 1)
        assert float((out[name] - ref).abs().max()) <= TOL
    assert float((out["fake"] - out["real"]).abs().max()) > 1e-3
