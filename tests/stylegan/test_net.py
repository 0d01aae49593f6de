"""nodes/stylegan/{ops,net,discriminator}.py: each public piece against the spec.

Mutants seen to fail here: the transposed-conv fast path of upfirdn2d with padding K - p0
(upfirdn test); "auto" folding s but not the demodulation into the batch-1 weight (modes test);
infer_config trying only channel_multiplier 2 (config test, cm 1 case).
"""

from __future__ import annotations

import pytest
import torch

from nodes.stylegan.discriminator import stddev_group
from nodes.stylegan.load import infer_config
from nodes.stylegan.net import PRESETS, Generator, StyleGANConfig
from nodes.stylegan.ops import make_kernel, upfirdn2d
from tests.stylegan.reference import official_generator_state, ref_upfirdn2d


@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1)), (1, 1, (1, 1)), (1, 2, (2, 1)), (2, 1, (1, 1)),
                                         (1, 1, (2, 1)), (3, 1, (1, 2))])
def test_upfirdn2d_matches_the_explicit_sum(up, down, pad):
    x = torch.randn(2, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    k = make_kernel((1, 3, 3, 1)) * up ** 2
    want = ref_upfirdn2d(x, k, up, down, pad)
    got = upfirdn2d(x, k, up, down, pad)
    assert got.shape == want.shape
    assert float((got - want).abs().max()) < 1e-5


@pytest.mark.parametrize("batch", [1, 3])
def test_modulation_modes_agree(batch):
    torch.manual_seed(0)
    g = Generator(StyleGANConfig(32, 64, 2, channel_max=64)).eval()
    for name, p in g.named_parameters():  # non-trivial biases and noise strengths
        if name.endswith(("bias", "noise.weight")):
            p.data += 0.1 * torch.randn_like(p)
    wp = torch.randn(batch, g.n_latent, 64)
    with torch.no_grad():
        outs = {m: g.set_mode(m)(wp) for m in ("auto", "scaled", "grouped")}
    assert float(outs["scaled"].std()) > 0.1
    for m in ("auto", "grouped"):
        assert float((outs[m] - outs["scaled"]).abs().max()) < 1e-4, m


@pytest.mark.parametrize("cfg", [StyleGANConfig(64, 64, 2, 1, 64), StyleGANConfig(128, 32, 2, 1, 256),
                                 StyleGANConfig(64, 64, 2, 2, 512)])
def test_infer_config_reads_the_shapes(cfg):
    st = official_generator_state(cfg.size, cfg.style_dim, cfg.n_mlp, cfg.channel_multiplier, cfg.channel_max)
    got = infer_config(st)
    assert got.channels() == cfg.channels()
    assert (got.size, got.style_dim, got.n_mlp) == (cfg.size, cfg.style_dim, cfg.n_mlp)


def test_config_numbers_and_presets():
    assert [StyleGANConfig(s).n_latent for s in (64, 256, 1024)] == [10, 14, 18]
    assert StyleGANConfig(256).num_layers == 13
    assert StyleGANConfig(256).channels()[256] == 128 and StyleGANConfig(1024).channels()[1024] == 32
    assert set(PRESETS["cpu64"].channels().values()) == {32}
    assert StyleGANConfig.from_json(PRESETS["ffhq256"].to_json()) == PRESETS["ffhq256"]
    with pytest.raises(ValueError, match="power of two"):
        StyleGANConfig(48)


def test_truncation_psi_0_is_w_avg_and_mixing_takes_layers_from_index():
    w, w2, avg = torch.randn(2, 16), torch.randn(2, 16), torch.randn(1, 16)
    assert torch.allclose(Generator.truncate(w, 0.0, avg), avg.expand(2, -1))
    assert torch.equal(Generator.truncate(w, 1.0, avg), w)
    g = Generator(StyleGANConfig(16, 16, 1, channel_max=8))
    wp = g.to_wplus(w, w2, 2)
    assert torch.equal(wp[:, :2], w[:, None].expand(-1, 2, -1))
    assert torch.equal(wp[:, 2:], w2[:, None].expand(-1, 4, -1))


def test_stddev_group_divides_the_batch():
    assert [stddev_group(b) for b in (1, 2, 3, 4, 6, 8, 9)] == [1, 2, 3, 4, 3, 4, 3]
