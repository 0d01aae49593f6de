"""SPADE's random choices: the generator's ``seed`` picks z where the model has one, and the VAE
sample is z = mu + sigma * eps with sigma = exp(logvar / 2) (SPADE sec. 3.3; the official
``reparameterize``: ``std = torch.exp(0.5 * logvar)``)."""

from __future__ import annotations

import math

import torch

from nodes.common.io import LoadImage
from nodes.spade.net import reparameterize
from nodes.spade.nodes import Generator, StyleEncoder
from tests.docs.fixtures import ROOT


class _Recorder(torch.nn.Module):
    """Stands in for G's network: records the z it is given (the node's job ends there)."""

    def __init__(self) -> None:
        super().__init__()
        self.z: list[torch.Tensor] = []

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        self.z.append(z)
        return torch.zeros(seg.shape[0], 3, *seg.shape[-2:])


def _vae_generator(seed: int, encoder: bool = False) -> Generator:
    g = Generator({"use_vae": True, "seed": seed, "size": 64})
    g.ensure_setup()
    g.net = _Recorder()
    if encoder:  # a fixed posterior: mu = 1, sigma = exp(-1 / 2)
        g.encoder = lambda x: (torch.ones(x.shape[0], 256), -torch.ones(x.shape[0], 256))
    return g


def test_seed_picks_z_of_the_vae_generator():
    """Mutants: the generator ignores ``seed`` (z from seed 0 always, or from the global RNG):
    two seeds then give the same z, or one seed two different z."""
    labels = torch.zeros(1, 64, 64, dtype=torch.long)
    g0, g1 = _vae_generator(0), _vae_generator(1)
    g0(labels=labels), g1(labels=labels), g1(labels=labels)
    z0, z1, z1b = g0.net.z[0], g1.net.z[0], g1.net.z[1]
    assert z0.shape == (1, 256) and torch.equal(z1, z1b) and not torch.equal(z0, z1)
    assert torch.equal(z1, torch.randn(1, 256, generator=torch.Generator().manual_seed(1)))


def test_seed_picks_the_posterior_sample_of_a_style_picture():
    """Mutant: the style path draws eps without the seeded generator (or ignores the posterior)."""
    labels, style = torch.zeros(1, 64, 64, dtype=torch.long), torch.rand(1, 3, 64, 64)
    g5 = _vae_generator(5, encoder=True)
    g5(labels=labels, style=style), g5(labels=labels, style=style)
    eps = torch.randn(1, 256, generator=torch.Generator().manual_seed(5))
    assert torch.equal(g5.net.z[0], g5.net.z[1])
    assert torch.allclose(g5.net.z[0], 1 + math.exp(-0.5) * eps)


def test_reparameterize_scales_eps_by_the_standard_deviation():
    """Mutants: sigma = exp(logvar) (the variance), or exp(-logvar / 2)."""
    mu, logvar = torch.full((1, 4096), 0.5), torch.full((1, 4096), math.log(4.0))  # sigma = 2
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    eps = torch.randn((1, 4096), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(z, 0.5 + 2.0 * eps)
    assert abs(float((z - 0.5).std()) - 2.0) < 0.1


def test_style_encoder_sample_uses_its_mu_and_logvar():
    """The node's z is mu + exp(logvar / 2) * eps with eps from its seed (mutant: exp(logvar))."""
    style = LoadImage({"path": str(ROOT / "examples" / "landscape_style_day.png")})()["image"]
    out = StyleEncoder({"weights": "spade_landscape_encoder", "seed": 2})(image=style)
    eps = torch.randn(out["mu"].shape, generator=torch.Generator().manual_seed(2))
    assert float(out["logvar"].abs().max()) > 0.1  # the check below tells exp(lv/2) from exp(lv)
    assert torch.allclose(out["z"], out["mu"] + torch.exp(0.5 * out["logvar"]) * eps, atol=1e-6)
