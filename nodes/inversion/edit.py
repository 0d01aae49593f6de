"""The IDInvert applications as tensor operations on W+ codes (paper sec. 4; official
``interpolate.py``, ``manipulate.py``, ``mix_style.py``, ``diffuse.py``, ``utils/editor.py``) and a
linear boundary learner in the manner of InterFaceGAN (Shen et al., CVPR 2020, sec. 2.2).

Shapes: W+ is B x L x D. Outputs that enumerate (steps, grids) are flattened onto the batch axis
in the documented order so that one generator call renders them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Linear interpolation a -> b with ``steps`` codes including both ends (official step 5).
    a, b: B x L x D -> (B * steps) x L x D, pair-major (pair 0's steps first)."""
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device).view(1, steps, 1, 1)
    return (a[:, None] + t * (b - a)[:, None]).flatten(0, 1)            # B x steps x L x D -> flat


def manipulate(wp: torch.Tensor, boundary: torch.Tensor, layers: list[int], strengths: torch.Tensor) -> torch.Tensor:
    """w + l n on ``layers`` only, for each l in ``strengths`` (official ``linspace(-3, 3, 7)``).
    wp: B x L x D; boundary: 1 x L x D or 1 x D -> (B * len(strengths)) x L x D, image-major."""
    n = boundary.to(wp)
    n = n[:, None] if n.dim() == 2 else n                              # 1 x D -> 1 x 1 x D
    n = n.expand(1, wp.shape[1], -1) if n.shape[1] == 1 else n
    sel = torch.zeros(1, wp.shape[1], 1, dtype=wp.dtype, device=wp.device)
    sel[:, layers] = 1
    l = strengths.to(wp).view(1, -1, 1, 1)
    return (wp[:, None] + l * (n * sel)[:, None]).flatten(0, 1)          # B x S x L x D -> flat


def style_mix(style: torch.Tensor, content: torch.Tensor, start: int) -> torch.Tensor:
    """Content codes with layers ``start..L-1`` replaced by the style code's (official
    ``mix_layer_start_idx`` 10 of 14). style S x L x D, content C x L x D -> (S * C) x L x D,
    style-major (row s of the grid is style s over every content)."""
    s, c = style.shape[0], content.shape[0]
    out = content[None].expand(s, c, -1, -1).clone()
    out[:, :, start:] = style[:, None, start:]
    return out.flatten(0, 1)


def box_mask(size: int, cx: float, cy: float, crop: float) -> torch.Tensor:
    """1 x 1 x size x size: ones in a square of side ``crop * size`` centred at (cx, cy) * size
    (official diffuse: 110 px centred at x 125, y 145 of 256)."""
    side = max(1, round(crop * size))
    x0, y0 = round(cx * size) - side // 2, round(cy * size) - side // 2
    m = torch.zeros(1, 1, size, size)
    m[..., max(0, y0):max(0, y0 + side), max(0, x0):max(0, x0 + side)] = 1
    return m


def stitch(target: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """target m + context (1 - m); target 1|B, context B images, mask 1|B x 1 x H x W."""
    return target * mask + context * (1 - mask)


def learn_boundary(codes: torch.Tensor, labels: torch.Tensor, l2: float = 1e-3,
                   iters: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """One linear boundary per layer from binary labels: L2-regularised logistic regression on
    standardised codes (InterFaceGAN fits a linear SVM; both give the separating hyperplane's
    normal), the normal mapped back to code space and scaled to unit norm per layer.

    codes N x L x D, labels N (0 / 1, both present) -> (boundary 1 x L x D pointing from label 0 to
    label 1, training accuracy per layer L)."""
    x = codes.detach().double().transpose(0, 1)                       # L x N x D
    mu, sd = x.mean(1, keepdim=True), x.std(1, keepdim=True).clamp_min(1e-6)
    z = (x - mu) / sd
    y = labels.detach().double().flatten() * 2 - 1                   # N in {-1, 1}
    w = torch.zeros(x.shape[0], x.shape[2], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(x.shape[0], 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        margin = y * (torch.einsum("lnd,ld->ln", z, w) + b)
        loss = F.softplus(-margin).mean(1).sum() + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        acc = ((torch.einsum("lnd,ld->ln", z, w) + b) * y > 0).double().mean(1)
        normal = w / sd[:, 0]                                         # standardised -> code space
        normal = normal / normal.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return normal[None].float(), acc.float()
