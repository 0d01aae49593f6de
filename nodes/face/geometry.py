"""Component geometry of mask-guided portrait editing (Gu et al., CVPR 2019): centres, crops, paste-back.

Plain tensor functions, reusable without the engine. Everything is defined on the ``celebamask11``
label map (0 bg, 1 skin, 2 l_brow, 3 r_brow, 4 l_eye, 5 r_eye, 6 nose, 7 u_lip, 8 mouth, 9 l_lip,
10 hair; "l" = image-left) and follows the official data loader at 256 x 256:

- centre of a part = integer midpoint of its bounding box (not its centroid) on the label map;
  eyes use labels 4 / 5, the mouth uses {7, 8, 9}; a missing part falls back to the canonical
  aligned-face position (y, x) = (116, 96), (116, 160), (184, 128);
- crops are eyes 32 x 48 and mouth 80 x 144 around the centre; skin and hair are the whole
  image multiplied by their masks ({1, 2, 3, 6}: brows and nose count as skin; {10});
- feature maps of the eye / mouth decoders are pasted at ``int(c * scale + 0.5)`` (scale 1/4 for
  the 64 x 64 mask-feature grid) into zero maps;
- the generator's input mask enlarges eyes and mouth 1.1x about their centres ("append_region").

Sizes other than 256 scale every constant by ``H / 256`` (and ``W / 256``). Where the official code
asserts that a crop lies inside the image we clamp the centre instead, so a face near the border
still yields a full-size crop.
"""

from __future__ import annotations

import torch

COMPONENTS: tuple[str, ...] = ("l_eye", "r_eye", "mouth", "skin", "hair")
"""The five local-embedding components, in the thesis's order (x_i^s, i = 0..4)."""

CANON = 256
CROP_HW: dict[str, tuple[int, int] | None] = {"l_eye": (32, 48), "r_eye": (32, 48), "mouth": (80, 144),
                                              "skin": None, "hair": None}
"""Crop (h, w) at 256 x 256; None = the whole image."""
DEFAULT_CENTRES: dict[str, tuple[int, int]] = {"l_eye": (116, 96), "r_eye": (116, 160), "mouth": (184, 128)}
"""Official fallback centres (y, x) at 256 when a part is absent from the mask."""
PART_LABELS: dict[str, tuple[int, ...]] = {"l_eye": (4,), "r_eye": (5,), "mouth": (7, 8, 9),
                                           "skin": (1, 2, 3, 6), "hair": (10,)}
"""Label ids that make up each component (centre for the first three, mask for all)."""
FEATURE_SCALE = 0.25
"""Mask-feature grid (64 x 64 at 256) relative to the image: where decoded parts are pasted."""


def _even(v: float) -> int:
    return max(2, int(round(v / 2.0)) * 2)


def crop_size(component: str, height: int, width: int) -> tuple[int, int]:
    """(h, w) of a component's crop for an image of ``height x width`` (scaled from 256)."""
    hw = CROP_HW[component]
    if hw is None:
        return height, width
    return _even(hw[0] * height / CANON), _even(hw[1] * width / CANON)


def part_mask(labels: torch.Tensor, component: str) -> torch.Tensor:
    """N x 1 x H x W float mask of a component's labels."""
    ids = torch.tensor(PART_LABELS[component], device=labels.device)
    return torch.isin(labels, ids).unsqueeze(1).float()


def _bbox_midpoint(mask: torch.Tensor) -> tuple[int, int] | None:
    ys = torch.nonzero(mask.any(dim=1)).flatten()
    xs = torch.nonzero(mask.any(dim=0)).flatten()
    if ys.numel() == 0:
        return None
    # int((a + b) / 2), as in the official loader
    return int((int(ys[0]) + int(ys[-1])) // 2), int((int(xs[0]) + int(xs[-1])) // 2)


def clamp_centre(cy: float, cx: float, hw: tuple[int, int], height: int, width: int) -> tuple[int, int]:
    """Move a centre so that an ``hw`` window around it (top = cy - h/2) lies inside the image."""
    h, w = hw
    cy = min(max(int(cy), h // 2), height - (h - h // 2))
    cx = min(max(int(cx), w // 2), width - (w - w // 2))
    return cy, cx


def component_centres(labels: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """N x 5 x 2 float (y, x) centres in ``COMPONENTS`` order from a celebamask11 label map.

    Eyes and mouth: bounding-box midpoints (official fallback when absent; clamped so their crop
    fits). Skin and hair are whole-image components: their centre is the image centre, so that
    cropping or pasting a full-size map "at" it is the identity.
    """
    if labels.dim() == 2:
        labels = labels.unsqueeze(0)
    n, height, width = labels.shape
    out = torch.zeros(n, len(COMPONENTS), 2)
    for b in range(n):
        for k, comp in enumerate(COMPONENTS):
            if CROP_HW[comp] is None:
                out[b, k] = torch.tensor([height // 2, width // 2], dtype=torch.float32)
                continue
            ids = torch.tensor(PART_LABELS[comp], device=labels.device)
            c = _bbox_midpoint(torch.isin(labels[b], ids))
            if c is None:
                dy, dx = DEFAULT_CENTRES[comp]
                c = (int(dy * height / CANON), int(dx * width / CANON))
            if clamp:
                c = clamp_centre(c[0], c[1], crop_size(comp, height, width), height, width)
            out[b, k] = torch.tensor(c, dtype=torch.float32)
    return out


def window(cy: float, cx: float, hw: tuple[int, int], height: int, width: int,
           scale: float = 1.0) -> tuple[int, int]:
    """Top-left corner of an ``hw`` window centred at ``(cy, cx) * scale``, clamped inside
    ``height x width``. ``int(c * scale + 0.5) - h // 2`` is the official placement rule."""
    h, w = hw
    top = int(cy * scale + 0.5) - h // 2
    left = int(cx * scale + 0.5) - w // 2
    return min(max(top, 0), max(height - h, 0)), min(max(left, 0), max(width - w, 0))


def crop_at(image: torch.Tensor, centres: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """N x C x h x w windows of ``image`` (N x C x H x W) centred at ``centres`` (N x 2, (y, x))."""
    n, c, height, width = image.shape
    h, w = hw
    if h > height or w > width:
        raise ValueError(f"crop {h}x{w} does not fit an image of {height}x{width}")
    out = image.new_zeros(n, c, h, w)
    for b in range(n):
        top, left = window(float(centres[b, 0]), float(centres[b, 1]), hw, height, width)
        out[b] = image[b, :, top:top + h, left:left + w]
    return out


def paste_at(patch: torch.Tensor, centres: torch.Tensor, out_hw: tuple[int, int],
             scale: float = 1.0) -> torch.Tensor:
    """Place ``patch`` (N x C x h x w) into zeros of N x C x ``out_hw`` at ``centres * scale``.

    The inverse of :func:`crop_at` for ``scale`` 1; with ``scale = FEATURE_SCALE`` it is the
    official placement of decoded eye / mouth features on the 64 x 64 grid (``int(c/4 + 0.5)``).
    Differentiable with respect to ``patch``.
    """
    n, c, h, w = patch.shape
    height, width = out_hw
    if h > height or w > width:
        raise ValueError(f"patch {h}x{w} does not fit a map of {height}x{width}")
    rows = []
    for b in range(n):
        top, left = window(float(centres[b, 0]), float(centres[b, 1]), (h, w), height, width, scale)
        # padding (not in-place writes) keeps autograd simple and exact
        rows.append(torch.nn.functional.pad(patch[b], (left, width - w - left, top, height - h - top)))
    return torch.stack(rows)


def crop_components(image: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor | None = None,
                    mask_eyes: bool = False, mask_mouth: bool = True,
                    fill: float = 0.0) -> dict[str, torch.Tensor]:
    """The five component images of the local embedding sub-network, keyed by ``COMPONENTS``.

    Eyes: plain windows (official) or, with ``mask_eyes``, windows multiplied by the eye's own
    label (the thesis's eye-only variant, section 4.5.1). Mouth: window x lips+mouth mask
    (official). Skin / hair: the whole image x their masks. Masked-out pixels take ``fill``.
    """
    if centres is None:
        centres = component_centres(labels)
    _, _, height, width = image.shape
    out: dict[str, torch.Tensor] = {}
    for k, comp in enumerate(COMPONENTS):
        hw = crop_size(comp, height, width)
        mask = part_mask(labels, comp)
        if CROP_HW[comp] is None:
            crop, m = image, mask
        else:
            crop = crop_at(image, centres[:, k], hw)
            m = crop_at(mask, centres[:, k], hw)
            masked = comp == "mouth" and mask_mouth or comp in ("l_eye", "r_eye") and mask_eyes
            if not masked:
                out[comp] = crop
                continue
        out[comp] = crop * m + fill * (1.0 - m)
    return out


def expand_parts(labels: torch.Tensor, centres: torch.Tensor | None = None,
                 factor: float = 1.1) -> torch.Tensor:
    """Enlarge eyes and mouth ``factor``x about their centres (the generator's input mask).

    Each part is resampled (nearest) from the map scaled about its own centre and painted over
    what was there; the other labels are untouched. ``factor`` 1 returns a copy.
    """
    if labels.dim() == 2:
        labels = labels.unsqueeze(0)
    if centres is None:
        centres = component_centres(labels, clamp=False)
    out = labels.clone()
    n, height, width = labels.shape
    ys = torch.arange(height, device=labels.device, dtype=torch.float32)
    xs = torch.arange(width, device=labels.device, dtype=torch.float32)
    for b in range(n):
        for k, comp in enumerate(COMPONENTS[:3]):
            cy, cx = float(centres[b, k, 0]), float(centres[b, k, 1])
            sy = (cy + (ys - cy) / factor).round().long().clamp(0, height - 1)
            sx = (cx + (xs - cx) / factor).round().long().clamp(0, width - 1)
            grown = labels[b][sy][:, sx]
            ids = torch.tensor(PART_LABELS[comp], device=labels.device)
            paint = torch.isin(grown, ids)
            out[b][paint] = grown[paint]
    return out
