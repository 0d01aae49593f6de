"""Independent references for the Fréchet distance and the FID Inception-v3, written from
pytorch-fid's documented behaviour (``fid_score.calculate_frechet_distance`` and
``inception.fid_inception_v3`` with ``FIDInceptionA/C/E_1/E_2``), not from our modules:

- ``frechet_distance_sqrtm``: d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)) with
  scipy's general matrix square root, the eps * I retry when the product is singular and the
  imaginary part dropped -- pytorch-fid's numerics.
- ``fid_inception_features``: a functional forward over a torchvision-named state dict, each
  block a table of branches (conv names, strides, paddings) plus its pool kind.

pytorch-fid itself imports torchvision, which does not import in this environment.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg


def frechet_distance_sqrtm(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                           eps: float = 1e-6) -> float:
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _conv(x: torch.Tensor, sd: dict[str, torch.Tensor], name: str, stride: int = 1,
          padding: int | tuple[int, int] = 0) -> torch.Tensor:
    y = F.conv2d(x, sd[f"{name}.conv.weight"], None, stride, padding)
    y = F.batch_norm(y, sd[f"{name}.bn.running_mean"], sd[f"{name}.bn.running_var"], sd[f"{name}.bn.weight"],
                     sd[f"{name}.bn.bias"], False, 0.0, 1e-3)
    return F.relu(y)


def _pad_of(sd: dict[str, torch.Tensor], name: str) -> tuple[int, int]:
    kh, kw = sd[f"{name}.conv.weight"].shape[-2:]
    return kh // 2, kw // 2


def _chain(x: torch.Tensor, sd: dict[str, torch.Tensor], block: str, names: list[str],
           last_stride: int = 1) -> torch.Tensor:
    """Convs in sequence, 'same' padding except a final stride-2 conv (valid)."""
    for i, n in enumerate(names):
        full = f"{block}.{n}"
        if i == len(names) - 1 and last_stride == 2:
            x = _conv(x, sd, full, 2, 0)
        else:
            x = _conv(x, sd, full, 1, _pad_of(sd, full))
    return x


# branch tables: each branch a list of conv names; "split" branches end in two parallel convs
BLOCK_A = [["branch1x1"], ["branch5x5_1", "branch5x5_2"], ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]]
BLOCK_C = [["branch1x1"], ["branch7x7_1", "branch7x7_2", "branch7x7_3"],
           ["branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"]]
BLOCK_B = [["branch3x3"], ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]]
BLOCK_D = [["branch3x3_1", "branch3x3_2"], ["branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"]]


def _pool_branch(x: torch.Tensor, sd: dict[str, torch.Tensor], block: str, kind: str) -> torch.Tensor:
    if kind == "avg_valid":  # TF average pool: padded zeros are not counted
        ones = torch.ones_like(x[:, :1])
        p = F.avg_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 1) * 9 / (F.avg_pool2d(F.pad(ones, (1, 1, 1, 1)), 3, 1) * 9)
    else:
        p = F.max_pool2d(F.pad(x, (1, 1, 1, 1), value=float("-inf")), 3, 1)
    return _conv(p, sd, f"{block}.branch_pool")


def _block_ac(x, sd, block, table):
    return torch.cat([_chain(x, sd, block, b) for b in table] + [_pool_branch(x, sd, block, "avg_valid")], 1)


def _block_reduce(x, sd, block, table):
    return torch.cat([_chain(x, sd, block, b, last_stride=2) for b in table] + [F.max_pool2d(x, 3, 2)], 1)


def _block_e(x, sd, block, pool):
    b1 = _conv(x, sd, f"{block}.branch1x1")
    s = _conv(x, sd, f"{block}.branch3x3_1")
    s = [_conv(s, sd, f"{block}.branch3x3_2{c}", 1, _pad_of(sd, f"{block}.branch3x3_2{c}")) for c in "ab"]
    d = _chain(x, sd, block, ["branch3x3dbl_1", "branch3x3dbl_2"])
    d = [_conv(d, sd, f"{block}.branch3x3dbl_3{c}", 1, _pad_of(sd, f"{block}.branch3x3dbl_3{c}")) for c in "ab"]
    return torch.cat([b1, *s, *d, _pool_branch(x, sd, block, pool)], 1)


def fid_inception_features(sd: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> 2048-d pool_3 features of pytorch-fid's InceptionV3 (block index 3)."""
    x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    x = _conv(x, sd, "Conv2d_1a_3x3", 2)
    x = _conv(x, sd, "Conv2d_2a_3x3")
    x = F.max_pool2d(_conv(x, sd, "Conv2d_2b_3x3", 1, 1), 3, 2)
    x = F.max_pool2d(_conv(_conv(x, sd, "Conv2d_3b_1x1"), sd, "Conv2d_4a_3x3"), 3, 2)
    for b in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        x = _block_ac(x, sd, b, BLOCK_A)
    x = _block_reduce(x, sd, "Mixed_6a", BLOCK_B)
    for b in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        x = _block_ac(x, sd, b, BLOCK_C)
    x = _block_reduce(x, sd, "Mixed_7a", BLOCK_D)
    x = _block_e(x, sd, "Mixed_7b", "avg_valid")
    x = _block_e(x, sd, "Mixed_7c", "max")
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def seeded_official_state_dict(keys_shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the release file's key layout that keep activations O(1) through ~95
    convs: He-scaled conv weights, BN statistics and affine terms near identity."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for k, shape in keys_shapes.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(0)
        elif k.endswith("conv.weight") or k == "fc.weight":
            fan_in = int(np.prod(shape[1:]))
            sd[k] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) * 0.5 + 0.75
        elif k.endswith("running_mean") or k.endswith("bn.bias") or k == "fc.bias":
            sd[k] = torch.randn(shape, generator=g) * 0.1
        else:  # bn.weight
            sd[k] = torch.rand(shape, generator=g) * 0.5 + 0.75
    return sd
