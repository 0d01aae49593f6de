"""Independent reference for DDS pass D1, written from the spec of the official loop
(denabazazian/Dual-Domain-Synthesis ``DDS_main.py`` and ``perceptual_model.py``, research note
anchor-inversion-dualdomain.md sec. 3 and 5), not from ``nodes.dualdomain``.

Structure kept from the official loop: numpy float64 masks through ``ToTensor``-like conversion,
the generated images clamped in place before the crossover is built, the crossover clamped in
place, the perceptual net re-run on both constant targets at every call with the images and mask
upsampled by a scale factor, masks resized 1x / 0.25x / 0.5x between slices, noise flagged
``requires_grad`` and re-normalised after every step, Adam on the code only. The VGG16 is
functional over a torchvision-layout state dict (``features.{i}.weight``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19)


def vgg16_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random torchvision-layout VGG16 ``features`` up to conv4_2 (He-like scale)."""
    g = torch.Generator().manual_seed(seed)
    chans = (3, 64, 64, 128, 128, 256, 256, 256, 512, 512)
    sd = {}
    for k, i in enumerate(VGG16_CONVS):
        cin, cout = chans[k], chans[k + 1]
        sd[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        sd[f"features.{i}.bias"] = torch.randn(cout, generator=g) * 0.01
    return sd


def _conv(sd, i, x):
    return F.relu(F.conv2d(x, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], padding=1))


def vgg_slices(sd, x):
    """relu1_1, relu1_2, relu3_2, relu4_2 of VGG16 on the raw input (no normalisation)."""
    h0 = _conv(sd, 0, x)
    h1 = _conv(sd, 2, h0)
    h = F.max_pool2d(_conv(sd, 7, _conv(sd, 5, F.max_pool2d(h1, 2))), 2)
    h2 = _conv(sd, 12, _conv(sd, 10, h))
    h3 = _conv(sd, 19, _conv(sd, 17, F.max_pool2d(_conv(sd, 14, h2), 2)))
    return h0, h1, h2, h3


def calc_loss(synth, img, sd, mask, res, psize):
    up = torch.nn.Upsample(scale_factor=psize / res, mode="bilinear")
    r = vgg_slices(sd, up(img))
    s = vgg_slices(sd, up(synth))
    mse = torch.nn.MSELoss(reduction="mean")
    mask = up(mask)
    loss = 0
    for k in range(4):
        if k == 2:
            mask = torch.nn.Upsample(scale_factor=0.25, mode="bilinear")(mask)
        if k == 3:
            mask = torch.nn.Upsample(scale_factor=0.5, mode="bilinear")(mask)
        m = mask.expand(1, *s[k].shape[1:])
        loss = loss + mse(s[k] * m, r[k] * m)
    return loss


def official_d1_losses(G, sd, img_source, img_target, mask_np: np.ndarray, targ_mask_np: np.ndarray,
                       noises, mean_seed: int, n_mean: int, iterations: int, psize: int, lr: float = 0.01):
    """Losses (floats) of the first ``iterations`` steps of pass D1, official structure."""
    res = img_source.shape[-1]
    img_source, img_target = img_source.clone().clamp_(-1.0, 1.0), img_target.clone().clamp_(-1.0, 1.0)
    mask_0 = torch.from_numpy(mask_np)[None, None]          # float64, as ToTensor of np.zeros
    mask_1 = 1 - mask_0.clone()
    targ_mask_0 = torch.from_numpy(targ_mask_np)[None, None]
    xover = (img_source * mask_1) + (img_target * targ_mask_0)
    xover.clamp_(-1.0, 1.0)
    with torch.no_grad():
        z = torch.randn(n_mean, G.style_dim, generator=torch.Generator().manual_seed(mean_seed))
        latent_mean = G.style(z).mean(0)
    latent_in = latent_mean.detach().clone().unsqueeze(0).repeat(1, 1).unsqueeze(1).repeat(1, G.n_latent, 1)
    latent_in.requires_grad = True
    noises = [n.detach().clone() for n in noises]
    for n in noises:
        n.requires_grad = True
    opt = torch.optim.Adam([latent_in], lr=lr)
    out = []
    for _ in range(iterations):
        synth = G.synthesis(latent_in, noises)[0]
        loss_wl1 = calc_loss(synth, img_source, sd, mask_1, res, psize)
        loss_wl0 = calc_loss(synth, img_target, sd, mask_0, res, psize)
        e1, e0 = mask_1.expand(1, 3, res, res), mask_0.expand(1, 3, res, res)
        mse_w0 = F.mse_loss(synth * e1, img_source * e1)
        mse_w1 = F.mse_loss(synth * e0, img_target * e0)
        mse_crossover = 3 * F.mse_loss(synth.float(), xover.float())
        loss = 2 * (loss_wl0 + loss_wl1) + (mse_w0 + mse_w1) + mse_crossover
        out.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        for n in noises:
            mean, std = n.mean(), n.std()
            n.data.add_(-mean).div_(std)
    return out


def fewshot_state(in_ch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Official-layout FewShotCNN 'S' state dict (``layers.{0,2,4,6,8}``), seeded random."""
    g = torch.Generator().manual_seed(seed)
    chans = (in_ch, 128, 64, 64, 32, 2)
    return {k: v for i in range(5) for k, v in (
        (f"layers.{2 * i}.weight", torch.randn(chans[i + 1], chans[i], 3, 3, generator=g) * 0.1),
        (f"layers.{2 * i}.bias", torch.randn(chans[i + 1], generator=g) * 0.1))}


def ref_segment(sd: dict[str, torch.Tensor], features: list[torch.Tensor]) -> torch.Tensor:
    """Official forward: nearest-upsample every map to the largest, concatenate, five convs with
    dilations 1, 2, 1, 2, 1 and LeakyReLU(0.2) between; returns logits."""
    size = max(f.shape[-1] for f in features)
    x = torch.cat([F.interpolate(f, size=(size, size), mode="nearest") for f in features], 1)
    for i, d in enumerate((1, 2, 1, 2, 1)):
        x = F.conv2d(x, sd[f"layers.{2 * i}.weight"], sd[f"layers.{2 * i}.bias"], padding=d, dilation=d)
        if i < 4:
            x = F.leaky_relu(x, 0.2)
    return x
