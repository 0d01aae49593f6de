"""Independent reference for IDInvert's networks, written from the official PyTorch port's
description (research note sec. 1, genforce/idinvert_pytorch ``models/*_network.py``), as plain
functions over OFFICIAL-layout state dicts (``mapping.dense0.fc.weight``, ``block1.bn.bn.*``,
``layer0.weight`` ...). Nothing here imports nodes.*.

Deliberately different formulations from the code under test: the fused up-sampling is written as
nearest-neighbour up-sampling + a 3x3 conv with the flipped kernel (the same map as the official
4x4 transposed conv); the blur as an explicit depthwise conv with the official C x 1 x 3 x 3 kernel;
batch norm by its formula; the encoder's use_wscale=False residual convs literally as
``(conv(x) / s) * s + b``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

NF = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def official_generator_state(size: int, fmaps_max: int = 512, w_dim: int = 512, n_mlp: int = 8,
                             seed: int = 0) -> dict[str, torch.Tensor]:
    """A StyleGANGeneratorNet(repeat_w=False, fused_scale='auto') state_dict with seeded random values
    (biases and noise strengths non-zero so that every term is exercised)."""
    g = _g(seed)
    n_latent = 2 * (int(math.log2(size)) - 1)
    nf = {r: min(NF[r], fmaps_max) for r in NF if r <= size}
    sd: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        out = w_dim * n_latent if i == n_mlp - 1 else w_dim
        sd[f"mapping.dense{i}.fc.weight"] = torch.randn(out, w_dim, generator=g) * 100  # ~ N(0, 1/lr^2)
        sd[f"mapping.dense{i}.wscale.bias"] = torch.randn(out, generator=g) * 10
    sd["truncation.w_avg"] = torch.randn(w_dim, generator=g) * 0.3
    sd["truncation.truncation"] = torch.ones(1, n_latent, 1)
    sd["synthesis.lod"] = torch.zeros(())
    blur = torch.tensor([1.0, 2.0, 1.0])
    blur = torch.outer(blur, blur) / 16
    for b, res in enumerate(r for r in nf if r >= 4):
        c = nf[res]
        for j in (2 * b, 2 * b + 1):
            p = f"synthesis.layer{j}"
            if j == 0:
                sd[f"{p}.const"] = torch.randn(1, c, 4, 4, generator=g)
            elif j % 2 == 0:
                cin = nf[res // 2]
                if res >= 128:
                    sd[f"{p}.weight"] = torch.randn(3, 3, cin, c, generator=g)
                else:
                    sd[f"{p}.conv.weight"] = torch.randn(c, cin, 3, 3, generator=g)
                sd[f"{p}.blur.kernel"] = blur.expand(c, 1, 3, 3).clone()
            else:
                sd[f"{p}.conv.weight"] = torch.randn(c, c, 3, 3, generator=g)
            sd[f"{p}.epilogue.apply_noise.noise"] = torch.randn(1, 1, res, res, generator=g)
            sd[f"{p}.epilogue.apply_noise.weight"] = torch.randn(c, generator=g) * 0.2
            sd[f"{p}.epilogue.bias"] = torch.randn(c, generator=g) * 0.2
            sd[f"{p}.epilogue.style_mod.dense.fc.weight"] = torch.randn(2 * c, w_dim, generator=g)
            sd[f"{p}.epilogue.style_mod.dense.wscale.bias"] = torch.randn(2 * c, generator=g) * 0.2
        sd[f"synthesis.output{b}.conv.weight"] = torch.randn(3, c, 1, 1, generator=g)
        sd[f"synthesis.output{b}.bias"] = torch.randn(3, generator=g) * 0.1
    return sd


def ref_mapping(sd: dict[str, torch.Tensor], z: torch.Tensor, n_latent: int) -> torch.Tensor:
    x = z / torch.sqrt((z ** 2).mean(1, keepdim=True) + 1e-8)
    i = 0
    while f"mapping.dense{i}.fc.weight" in sd:
        w, b = sd[f"mapping.dense{i}.fc.weight"], sd[f"mapping.dense{i}.wscale.bias"]
        x = F.leaky_relu(x @ w.t() * (math.sqrt(2) / math.sqrt(w.shape[1]) * 0.01) + b * 0.01, 0.2)
        i += 1
    return x.reshape(z.shape[0], n_latent, -1)


def _epilogue(sd, p, x, w):
    x = x + sd[f"{p}.apply_noise.noise"] * sd[f"{p}.apply_noise.weight"][None, :, None, None]
    x = F.leaky_relu(x + sd[f"{p}.bias"][None, :, None, None], 0.2)
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True)
    x = (x - mu) / torch.sqrt(var + 1e-8)
    sw = sd[f"{p}.style_mod.dense.fc.weight"]
    style = w @ sw.t() / math.sqrt(sw.shape[1]) + sd[f"{p}.style_mod.dense.wscale.bias"]
    c = x.shape[1]
    return x * (1 + style[:, :c, None, None]) + style[:, c:, None, None]


def ref_synthesis(sd: dict[str, torch.Tensor], wp: torch.Tensor, final_tanh: bool = True) -> torch.Tensor:
    """W+ -> image with the official port's semantics (lod 0)."""
    n_blocks = wp.shape[1] // 2
    x = sd["synthesis.layer0.const"].repeat(wp.shape[0], 1, 1, 1)
    x = _epilogue(sd, "synthesis.layer0.epilogue", x, wp[:, 0])
    for j in range(1, 2 * n_blocks):
        p = f"synthesis.layer{j}"
        if j % 2 == 0:
            up = F.interpolate(x, scale_factor=2, mode="nearest")
            if f"{p}.weight" in sd:                       # fused: kk x in x out, flipped
                k = sd[f"{p}.weight"].permute(3, 2, 0, 1).flip(2, 3)
            else:
                k = sd[f"{p}.conv.weight"]
            x = F.conv2d(up, k, padding=1) * (math.sqrt(2) / math.sqrt(k.shape[1] * 9))
            x = F.conv2d(x, sd[f"{p}.blur.kernel"], padding=1, groups=x.shape[1])
        else:
            k = sd[f"{p}.conv.weight"]
            x = F.conv2d(x, k, padding=1) * (math.sqrt(2) / math.sqrt(k.shape[1] * 9))
        x = _epilogue(sd, f"{p}.epilogue", x, wp[:, j])
    o = f"synthesis.output{n_blocks - 1}"
    img = F.conv2d(x, sd[f"{o}.conv.weight"]) / math.sqrt(x.shape[1]) + sd[f"{o}.bias"][None, :, None, None]
    return torch.tanh(img) if final_tanh else img


# ---- encoder --------------------------------------------------------------------------------

def _bn_state(sd, p, c, g):
    sd[f"{p}.bn.weight"] = 1 + 0.2 * torch.randn(c, generator=g)
    sd[f"{p}.bn.bias"] = 0.2 * torch.randn(c, generator=g)
    sd[f"{p}.bn.running_mean"] = 0.2 * torch.randn(c, generator=g)
    sd[f"{p}.bn.running_var"] = 0.5 + torch.rand(c, generator=g)
    sd[f"{p}.bn.num_batches_tracked"] = torch.tensor(100)


def official_encoder_state(size: int, base: int = 64, cmax: int = 1024, w_dim: int = 512,
                           seed: int = 0) -> dict[str, torch.Tensor]:
    """A StyleGANEncoderNet(use_bn=True, use_wscale=False) state_dict, seeded random values."""
    g = _g(seed)
    nb = int(math.log2(size))
    sd: dict[str, torch.Tensor] = {}
    c_in, c_out = 3, base
    for k in range(nb):
        if k == 0:
            sd["block0.conv.weight"] = torch.randn(c_out, 3, 3, 3, generator=g) * 0.3
            _bn_state(sd, "block0.bn", c_out, g)
        elif k == nb - 1:
            c_out = w_dim * 2 * k
            sd[f"block{k}.fc.weight"] = torch.randn(c_out, c_in * 16, generator=g)
            _bn_state(sd, f"block{k}.bn", c_out, g)
        else:
            h = min(c_in, c_out)
            if c_in != c_out:
                sd[f"block{k}.conv.weight"] = torch.randn(c_out, c_in, 1, 1, generator=g) / math.sqrt(c_in)
                _bn_state(sd, f"block{k}.bn", c_out, g)
            sd[f"block{k}.conv1.weight"] = torch.randn(h, c_in, 3, 3, generator=g) / math.sqrt(c_in * 9)
            sd[f"block{k}.wscale1.bias"] = 0.1 * torch.randn(h, generator=g)
            _bn_state(sd, f"block{k}.bn1", h, g)
            sd[f"block{k}.conv2.weight"] = torch.randn(c_out, h, 3, 3, generator=g) / math.sqrt(h * 9)
            sd[f"block{k}.wscale2.bias"] = 0.1 * torch.randn(c_out, generator=g)
            _bn_state(sd, f"block{k}.bn2", c_out, g)
        c_in, c_out = c_out, min(c_out * 2, cmax)
    return sd


def _bn(sd, p, x):
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return ((x - sd[f"{p}.bn.running_mean"].view(shape)) / torch.sqrt(sd[f"{p}.bn.running_var"].view(shape) + 1e-5)
            * sd[f"{p}.bn.weight"].view(shape) + sd[f"{p}.bn.bias"].view(shape))


def ref_encode(sd: dict[str, torch.Tensor], x: torch.Tensor, n_latent: int) -> torch.Tensor:
    """Eval-mode encoder: image [-1, 1] -> B x n_latent x D."""
    nb = n_latent // 2 + 1
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    x = lrelu(_bn(sd, "block0.bn", F.conv2d(x, sd["block0.conv.weight"], padding=1)))
    for k in range(1, nb - 1):
        x = F.avg_pool2d(x, 2)
        p = f"block{k}"
        y = lrelu(_bn(sd, f"{p}.bn", F.conv2d(x, sd[f"{p}.conv.weight"]))) if f"{p}.conv.weight" in sd else x
        for j in (1, 2):
            w = sd[f"{p}.conv{j}.weight"]
            s = math.sqrt(2) / math.sqrt(w[0].numel())
            h = (F.conv2d(x, w, padding=1) / s) * s + sd[f"{p}.wscale{j}.bias"][None, :, None, None]
            x = lrelu(_bn(sd, f"{p}.bn{j}", h))
        x = x + y
    w = sd[f"block{nb - 1}.fc.weight"]
    out = _bn(sd, f"block{nb - 1}.bn", x.reshape(x.shape[0], -1) @ w.t() / math.sqrt(w.shape[1]))
    return out.view(x.shape[0], n_latent, -1)


# ---- VGG16 (Keras-converted, caffe preprocessing) ---------------------------------------------

VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
VGG_CH = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)


def official_vgg_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = _g(seed)
    sd, c = {}, 3
    for i, co in zip(VGG_CONVS, VGG_CH, strict=True):
        sd[f"layer{i}.weight"] = torch.randn(co, c, 3, 3, generator=g) * math.sqrt(2 / (c * 9))
        sd[f"layer{i}.bias"] = 0.01 * torch.randn(co, generator=g)
        c = co
    return sd


def ref_vgg_conv43(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Official VGG16.forward with min_val -1, max_val 1, output_layer_idx 23."""
    x = (x + 1) * 255.0 / 2
    x = x[:, [2, 1, 0]] - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    for i in range(23):
        if i in (4, 9, 16):
            x = F.max_pool2d(x, 2, 2)
        elif f"layer{i}.weight" in sd:
            x = torch.relu(F.conv2d(x, sd[f"layer{i}.weight"], sd[f"layer{i}.bias"], padding=1))
    return x
