"""Fréchet distance / KID: the formula against pytorch-fid's numerics (reference.py), streaming
statistics against the batch formula, the stats file round trip, FD-Lite0 on real photographs.

Mutants seen failing: ``- 2 * tr_covmean`` -> ``- tr_covmean`` (formula test); the Chan update
without the ``outer(delta, delta)`` term (streaming test); ``/ count`` instead of ``/ (count - 1)``
(formula test, against np.cov); KID with the diagonal kept (unbiasedness test)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodes.features import frechet as FR

from .reference import frechet_distance_sqrtm


def _sets(d: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    a = rng.normal(size=(n, d)) @ mix
    b = (rng.normal(size=(n, d)) * 1.3 + 0.2) @ mix + rng.normal(size=(n, d)) * 0.1
    return a, b


@pytest.mark.parametrize("d,n", [(16, 200), (128, 600)])
def test_formula_matches_pytorch_fid_numerics(d, n):
    a, b = _sets(d, n, seed=d)
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    want = frechet_distance_sqrtm(mu1, s1, mu2, s2)
    st_a = FR.FeatureStats("effnet_lite0").update(torch.from_numpy(a))
    st_b = FR.FeatureStats("effnet_lite0").update(torch.from_numpy(b))
    assert st_a.frechet(st_b) == pytest.approx(want, rel=1e-6)
    got = FR.frechet_distance(*(torch.from_numpy(t) for t in (mu1, s1, mu2, s2)))
    assert got == pytest.approx(want, rel=1e-6)
    assert FR.frechet_distance(torch.from_numpy(mu1), torch.from_numpy(s1), torch.from_numpy(mu1),
                               torch.from_numpy(s1)) == pytest.approx(0.0, abs=1e-8 * want)


def test_sample_space_path_equals_covariance_path():
    a, b = _sets(64, 40, seed=3)  # n < d: covariances of rank 39
    ta, tb = torch.from_numpy(a).float(), torch.from_numpy(b).float()
    def st(t: torch.Tensor, keep: int) -> FR.FeatureStats:
        return FR.FeatureStats("effnet_lite0", keep=keep).update(t)

    fast, slow = st(ta, 40).frechet(st(tb, 40)), st(ta, 0).frechet(st(tb, 0))
    assert fast == pytest.approx(slow, rel=1e-7)  # eigh path: sqrt of ~0 eigenvalues costs digits
    ref = frechet_distance_sqrtm(ta.double().numpy().mean(0), np.cov(ta.double().numpy(), rowvar=False),
                                 tb.double().numpy().mean(0), np.cov(tb.double().numpy(), rowvar=False))
    assert fast == pytest.approx(ref, rel=1e-5)  # sqrtm of a singular product is itself less exact


def test_streaming_equals_one_batch_and_file_round_trip(tmp_path):
    a, _ = _sets(12, 300, seed=1)
    t = torch.from_numpy(a)
    whole = FR.FeatureStats("effnet_lite0").update(t)
    parts = FR.FeatureStats("effnet_lite0", keep=50)
    for chunk in (t[:7], t[7:8], t[8:150], t[150:]):
        parts.update(chunk.float())
    assert parts.count == 300
    assert torch.allclose(parts.mean, torch.from_numpy(a.mean(0)), atol=1e-6)
    assert torch.allclose(parts.cov, torch.from_numpy(np.cov(a, rowvar=False)), atol=1e-5)
    assert torch.allclose(whole.cov, torch.from_numpy(np.cov(a, rowvar=False)), atol=1e-12)
    parts.save(tmp_path / "s.safetensors")
    back = FR.FeatureStats.load(tmp_path / "s.safetensors")
    assert back.count == 300 and back.features == "effnet_lite0"
    assert torch.equal(back.mean, parts.mean) and torch.allclose(back.cov, parts.cov, rtol=1e-14)
    assert back.kept_features.shape == (50, 12)


def test_stats_refuse_mixed_descriptors():
    a = FR.FeatureStats("effnet_lite0").update(torch.randn(5, 3))
    b = FR.FeatureStats("inception").update(torch.randn(5, 3))
    with pytest.raises(ValueError, match="different features"):
        a.frechet(b)


def test_kid_is_unbiased_near_zero_for_same_distribution():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(400, 32, generator=g), torch.randn(400, 32, generator=g)
    same, _ = FR.kid(x, y, subsets=20, subset_size=200)
    shifted, _ = FR.kid(x, y + 0.5, subsets=20, subset_size=200)
    assert abs(same) < 0.01 < shifted
    # unbiased estimator: averaged over many independent draws it centres on 0 (the biased one,
    # with the kernel diagonal kept, is positive by ~E[k(x,x)] / n)
    vals = [FR.kid(torch.randn(40, 8, generator=g), torch.randn(40, 8, generator=g), subsets=1)[0]
            for _ in range(60)]
    assert abs(np.mean(vals)) < 3 * np.std(vals) / np.sqrt(len(vals))


def test_fd_lite0_separates_photo_sets():
    from .photos import batch

    x = batch(224)  # coffee, chelsea, china, flower
    jitter = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(1))
    ext = FR.extractor("effnet_lite0")
    ref = FR.stats_of([x], ext, keep=4)  # 4 samples < 1280 dims: the sample-space path
    near = ref.frechet(FR.stats_of([jitter], ext, keep=4))
    far = ref.frechet(FR.stats_of([noise], ext, keep=4))
    assert 0 <= near < far
