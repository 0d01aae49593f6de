"""Stand-ins for the files a reader brings to the documented commands.

The docs name files no test can fetch: official checkpoints (``latest_net_G.pth``,
``photo_wct.pth``, ``79999_iter.pth``, ``vgg19-dcbb9e9d.pth``) and the reader's own photo
(``my_photo.jpg``). Each factory writes one in the published layout: the official key names and
shapes, seeded random weights, saved with ``torch.save`` as the official code does. The SPADE
checkpoint is the official ADE20K layout at ``--ngf 16`` (the converter infers the width), so
that the README's ADE20K commands run in seconds; full-width fidelity is tested in
tests/spade/test_spade.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def spade_ade20k(path: Path) -> None:
    from nodes.spade.net import PRESETS
    from tests.spade.reference import RefGenerator

    torch.manual_seed(0)
    ref = RefGenerator(PRESETS["ade20k"].semantic_nc, 16, "normal", 256, 1.0, False)
    torch.save(ref.state_dict(), path)


def photowct(path: Path) -> None:
    from nodes.pis.photowct import OFFICIAL_WIDTHS, PhotoWCTNet

    torch.manual_seed(0)
    torch.save(PhotoWCTNet(OFFICIAL_WIDTHS).state_dict(), path)


def bisenet(path: Path) -> None:
    from nodes.face.net import BiSeNet

    torch.manual_seed(0)
    torch.save(BiSeNet(19).state_dict(), path)


def vgg19(path: Path) -> None:
    """torchvision's ``features.N`` keys up to relu5_1 (the classifier is left out: the
    converter drops it anyway)."""
    from nodes.common.vgg import conv_keys

    g = torch.Generator().manual_seed(0)
    torch.save({k: torch.randn(shape, generator=g) * 0.05 for k, shape in conv_keys().items()}, path)


def vgg16(path: Path) -> None:
    """torchvision's VGG16 ``features.N`` keys (13 convs) plus a classifier key the converter drops."""
    from nodes.features.backbones import VGG16Features

    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in VGG16Features().state_dict().items()}
    sd["classifier.6.bias"] = torch.zeros(1000)
    torch.save(sd, path)


def fid_inception(path: Path) -> None:
    """pytorch-fid's release layout (torchvision Inception-v3 names, fc 1008 classes, no AuxLogits)."""
    from nodes.features.inception import FIDInceptionV3

    torch.manual_seed(0)
    torch.save(FIDInceptionV3().state_dict(), path)


def my_photo(path: Path) -> None:
    shutil.copy(ROOT / "examples" / "photo_chelsea.jpg", path)


FILES: dict[str, Callable[[Path], None]] = {
    "latest_net_G.pth": spade_ade20k,
    "photo_wct.pth": photowct,
    "79999_iter.pth": bisenet,
    "vgg19-dcbb9e9d.pth": vgg19,
    "vgg16-397923af.pth": vgg16,
    "pt_inception-2015-12-05-6726825d.pth": fid_inception,
    "my_photo.jpg": my_photo,
}
