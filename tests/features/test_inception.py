"""The FID Inception-v3 against an independent functional reference (reference.py) built from the
same seeded weights in the release file's key layout, loaded through ``convert_inception``.

Mutants seen failing: Mixed_7c pooling with average instead of max; ``count_include_pad=True`` in
the A / C / E pool branch (torchvision's block instead of the FID one); no 2x - 1 input scaling."""

from __future__ import annotations

import pytest
import torch

from nodes.features.convert import ConversionError, convert_inception
from nodes.features.frechet import extractor
from nodes.features.inception import FIDInceptionV3

from .reference import fid_inception_features, seeded_official_state_dict


def test_converted_fid_inception_matches_reference(tmp_path):
    keys = {k: tuple(v.shape) for k, v in FIDInceptionV3().state_dict().items()}
    sd = seeded_official_state_dict(keys)
    torch.save(sd, tmp_path / "pt_inception-2015-12-05-6726825d.pth")  # as pytorch-fid's release file is
    msg = convert_inception(str(tmp_path / "pt_inception-2015-12-05-6726825d.pth"), str(tmp_path / "fid.safetensors"))
    assert "FID Inception-v3" in msg
    ext = extractor("inception", weights=str(tmp_path / "fid.safetensors"))
    x = torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(1))
    got = ext(x)
    with torch.no_grad():
        want = fid_inception_features(sd, x)
    assert got.shape == (2, 2048)
    assert want.std() > 1e-2  # not a flat output
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_torchvision_inception_is_refused(tmp_path):
    torch.save({"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}, tmp_path / "tv.pth")
    with pytest.raises(ConversionError, match="1000 classes"):
        convert_inception(str(tmp_path / "tv.pth"), str(tmp_path / "x.safetensors"))
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, tmp_path / "part.pth")
    with pytest.raises(ConversionError, match="missing keys"):
        convert_inception(str(tmp_path / "part.pth"), str(tmp_path / "x.safetensors"))
