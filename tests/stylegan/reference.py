"""Independent StyleGAN2 reference, written from the official spec (rosinality/stylegan2-pytorch
``model.py`` @bef283a, as described in shared/research/anchor-inversion-dualdomain.md sec. 2).

Nothing here imports ``nodes.stylegan``. The code paths differ on purpose from ours:
- the state_dict is built key by key from the spec (``official_generator_state``);
- the generator is a function over that dict (no modules);
- FIR filtering (``ref_upfirdn2d``) is an explicit sum of shifted, kernel-weighted slices;
- every modulated conv runs per sample, with the per-sample weight built, demodulated and
  convolved one sample at a time (the official fused path, unrolled over the batch);
- the minibatch stddev is an explicit loop over the groups.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

OFFICIAL_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


def channels(size: int, cm: int = 2, cap: int = 512) -> dict[int, int]:
    return {r: min(cap, c * (cm if r >= 64 else 1)) for r, c in OFFICIAL_CHANNELS.items() if r <= size}


def blur_kernel(scale: float = 1.0) -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k2 = torch.outer(k, k)
    return k2 / k2.sum() * scale


# ---- ops ---------------------------------------------------------------------------------------

def ref_upfirdn2d(x: torch.Tensor, k: torch.Tensor, up: int = 1, down: int = 1,
                  pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Zero-insert by ``up``, pad by pad[0] before / pad[1] after (>= 0, all StyleGAN2 uses), true
    convolution with k, keep every ``down``-th sample: an explicit sum over the kernel taps."""
    n, c, h, w = x.shape
    canvas = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    canvas[:, :, ::up, ::up] = x
    p0, p1 = pad
    big = torch.zeros(n, c, h * up + p0 + p1, w * up + p0 + p1, dtype=x.dtype)
    big[:, :, p0: p0 + h * up, p0: p0 + w * up] = canvas
    kh, kw = k.shape
    oh, ow = big.shape[2] - kh + 1, big.shape[3] - kw + 1
    out = torch.zeros(n, c, oh, ow, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # convolution: tap (i, j) of the flipped kernel
            out += k[kh - 1 - i, kw - 1 - j] * big[:, :, i: i + oh, j: j + ow]
    return out[:, :, ::down, ::down]


def lrelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    shape = [1, -1] + [1] * (x.dim() - 2)
    y = x + bias.view(shape)
    return torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2)


def equal_linear(x, weight, bias, lr_mul=1.0, act=False):
    out = x @ (weight * (lr_mul / math.sqrt(weight.shape[1]))).t()
    b = bias * lr_mul
    return lrelu(out, b) if act else out + b


def modconv(x, st, prefix, style, demod=True, up=False):
    """One official ModulatedConv2d, one sample at a time."""
    w = st[prefix + ".weight"][0]                                # out x in x k x k
    out_ch, in_ch, k, _ = w.shape
    s = equal_linear(style, st[prefix + ".modulation.weight"], st[prefix + ".modulation.bias"])
    outs = []
    for b in range(x.shape[0]):
        wb = w * s[b].view(1, in_ch, 1, 1) / math.sqrt(in_ch * k * k)
        if demod:
            wb = wb / torch.sqrt((wb ** 2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        xb = x[b: b + 1]
        if up:
            yb = F.conv_transpose2d(xb, wb.transpose(0, 1), stride=2)
            yb = ref_upfirdn2d(yb, blur_kernel(4.0), pad=(1, 1))
        else:
            yb = F.conv2d(xb, wb, padding=k // 2)
        outs.append(yb)
    return torch.cat(outs)


def styled_conv(x, st, prefix, style, noise, up=False):
    out = modconv(x, st, prefix + ".conv", style, up=up)
    out = out + st[prefix + ".noise.weight"] * noise
    return lrelu(out, st[prefix + ".activate.bias"])


def to_rgb(x, st, prefix, style, skip):
    out = modconv(x, st, prefix + ".conv", style, demod=False) + st[prefix + ".bias"]
    if skip is not None:
        out = out + ref_upfirdn2d(skip, blur_kernel(4.0), up=2, pad=(2, 1))
    return out


# ---- the official forward ----------------------------------------------------------------------

def ref_generate(st, size, styles, *, input_is_latent=False, truncation=1.0, truncation_latent=None,
                 inject_index=None, noise=None, n_mlp=8, lr_mlp=0.01):
    """rosinality ``Generator.forward(styles, inject_index, truncation, truncation_latent,
    input_is_latent, noise, randomize_noise=False)`` over a state_dict: returns (image, latent)."""
    log_size = int(math.log2(size))
    n_latent, num_layers = log_size * 2 - 2, (log_size - 2) * 2 + 1
    if not input_is_latent:
        mapped = []
        for z in styles:
            h = z * torch.rsqrt(torch.mean(z ** 2, dim=1, keepdim=True) + 1e-8)
            for i in range(1, n_mlp + 1):
                h = equal_linear(h, st[f"style.{i}.weight"], st[f"style.{i}.bias"], lr_mlp, act=True)
            mapped.append(h)
        styles = mapped
    if noise is None:
        noise = [st[f"noises.noise_{i}"] for i in range(num_layers)]
    if truncation < 1:
        styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
    if len(styles) < 2:
        latent = styles[0] if styles[0].dim() == 3 else styles[0].unsqueeze(1).repeat(1, n_latent, 1)
    else:
        if inject_index is None:
            inject_index = random.randint(1, n_latent - 1)
        latent = torch.cat([styles[0].unsqueeze(1).repeat(1, inject_index, 1),
                            styles[1].unsqueeze(1).repeat(1, n_latent - inject_index, 1)], 1)
    out = st["input.input"].repeat(latent.shape[0], 1, 1, 1)
    out = styled_conv(out, st, "conv1", latent[:, 0], noise[0])
    skip = to_rgb(out, st, "to_rgb1", latent[:, 1], None)
    i = 1
    for k in range(log_size - 2):
        out = styled_conv(out, st, f"convs.{2 * k}", latent[:, i], noise[i], up=True)
        out = styled_conv(out, st, f"convs.{2 * k + 1}", latent[:, i + 1], noise[i + 1])
        skip = to_rgb(out, st, f"to_rgbs.{k}", latent[:, i + 2], skip)
        i += 2
    return skip, latent


def ref_mean_latent(st, z, n_mlp=8, lr_mlp=0.01):
    h = z * torch.rsqrt(torch.mean(z ** 2, dim=1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        h = equal_linear(h, st[f"style.{i}.weight"], st[f"style.{i}.bias"], lr_mlp, act=True)
    return h.mean(0, keepdim=True)


def ref_discriminate(st, size, x):
    """rosinality ``Discriminator.forward`` over a state_dict (batch divisible by min(B, 4))."""
    def conv(h, prefix, k, down=False, act=True):
        wt = st[prefix + f".{1 if down else 0}.weight"]
        wt = wt / math.sqrt(wt.shape[1] * k * k)
        if down:
            p = 2 + (k - 1)
            h = ref_upfirdn2d(h, blur_kernel(), pad=((p + 1) // 2, p // 2))
            h = F.conv2d(h, wt, stride=2)
        else:
            h = F.conv2d(h, wt, padding=k // 2)
        return lrelu(h, st[prefix + f".{2 if down else 1}.bias"]) if act else h

    h = conv(x, "convs.0", 1)
    for j in range(1, int(math.log2(size)) - 1):
        a = conv(conv(h, f"convs.{j}.conv1", 3), f"convs.{j}.conv2", 3, down=True)
        h = (a + conv(h, f"convs.{j}.skip", 1, down=True, act=False)) / math.sqrt(2)
    b, c, hh, ww = h.shape
    g = min(b, 4)
    m = b // g
    sd = torch.zeros(b, 1, hh, ww)
    for j in range(m):  # group j = samples j, j + m, j + 2m, ...
        members = h[j::m]
        v = torch.sqrt(members.var(0, unbiased=False) + 1e-8).mean()
        sd[j::m] = v
    h = conv(torch.cat([h, sd], 1), "final_conv", 3).reshape(b, -1)
    h = equal_linear(h, st["final_linear.0.weight"], st["final_linear.0.bias"], act=True)
    return equal_linear(h, st["final_linear.1.weight"], st["final_linear.1.bias"])


# ---- official-layout state_dicts with seeded random weights --------------------------------------

def _modconv_keys(prefix, out_ch, in_ch, k, d, up):
    keys = {f"{prefix}.weight": (1, out_ch, in_ch, k, k), f"{prefix}.modulation.weight": (in_ch, d),
            f"{prefix}.modulation.bias": (in_ch,)}
    if up:
        keys[f"{prefix}.blur.kernel"] = "blur4"
    return keys


def official_generator_state(size, style_dim=512, n_mlp=8, cm=2, cap=512, seed=0):
    """A generator state_dict in rosinality's layout (keys in its order), seeded N(0, 1) weights;
    biases, modulation biases and noise weights perturbed by N(0, 0.1) so that a wrong bias or
    noise path shows (they start at 0 / 1 officially). Blur kernels are the official buffers."""
    g = torch.Generator().manual_seed(seed)
    ch, d = channels(size, cm, cap), style_dim
    spec: dict[str, object] = {}
    for i in range(1, n_mlp + 1):
        spec[f"style.{i}.weight"], spec[f"style.{i}.bias"] = (d, d), (d,)
    spec["input.input"] = (1, ch[4], 4, 4)

    def styled(prefix, cin, cout, up):
        spec.update(_modconv_keys(prefix + ".conv", cout, cin, 3, d, up))
        spec[prefix + ".noise.weight"], spec[prefix + ".activate.bias"] = (1,), (cout,)

    def rgb(prefix, cin, up):
        if up:
            spec[prefix + ".upsample.kernel"] = "up4"
        spec.update(_modconv_keys(prefix + ".conv", 3, cin, 1, d, False))
        spec[prefix + ".bias"] = (1, 3, 1, 1)

    styled("conv1", ch[4], ch[4], False)
    rgb("to_rgb1", ch[4], False)
    log_size = int(math.log2(size))
    cin = ch[4]
    for j, res in enumerate(2 ** i for i in range(3, log_size + 1)):
        styled(f"convs.{2 * j}", cin, ch[res], True)
        styled(f"convs.{2 * j + 1}", ch[res], ch[res], False)
        cin = ch[res]
    for j, res in enumerate(2 ** i for i in range(3, log_size + 1)):
        rgb(f"to_rgbs.{j}", ch[res], True)
    for i in range((log_size - 2) * 2 + 1):
        r = 2 ** ((i + 5) // 2)
        spec[f"noises.noise_{i}"] = (1, 1, r, r)
    return _fill(spec, g)


def official_discriminator_state(size, cm=2, cap=512, seed=1):
    g = torch.Generator().manual_seed(seed)
    ch = channels(size, cm, cap)
    spec: dict[str, object] = {"convs.0.0.weight": (ch[size], 3, 1, 1), "convs.0.1.bias": (ch[size],)}
    cin = ch[size]
    for j, i in enumerate(range(int(math.log2(size)), 2, -1), start=1):
        cout = ch[2 ** (i - 1)]
        spec.update({f"convs.{j}.conv1.0.weight": (cin, cin, 3, 3), f"convs.{j}.conv1.1.bias": (cin,),
                     f"convs.{j}.conv2.0.kernel": "blur1", f"convs.{j}.conv2.1.weight": (cout, cin, 3, 3),
                     f"convs.{j}.conv2.2.bias": (cout,), f"convs.{j}.skip.0.kernel": "blur1",
                     f"convs.{j}.skip.1.weight": (cout, cin, 1, 1)})
        cin = cout
    spec.update({"final_conv.0.weight": (ch[4], cin + 1, 3, 3), "final_conv.1.bias": (ch[4],),
                 "final_linear.0.weight": (ch[4], ch[4] * 16), "final_linear.0.bias": (ch[4],),
                 "final_linear.1.weight": (1, ch[4]), "final_linear.1.bias": (1,)})
    return _fill(spec, g)


def _fill(spec, g):
    kernels = {"blur4": blur_kernel(4.0), "up4": blur_kernel(4.0), "blur1": blur_kernel()}
    out = {}
    for k, shape in spec.items():
        if isinstance(shape, str):
            out[k] = kernels[shape].clone()
        elif k.endswith("modulation.bias"):
            out[k] = 1 + 0.1 * torch.randn(shape, generator=g)
        elif k.endswith("bias") or k.endswith("noise.weight"):
            out[k] = 0.1 * torch.randn(shape, generator=g)
        elif k.startswith("style."):
            out[k] = torch.randn(shape, generator=g) / 0.01  # EqualLinear stores randn / lr_mul
        else:
            out[k] = torch.randn(shape, generator=g)
    return out


# ---- the official fused CPU path, batched (the speed baseline of benchmarks/stylegan_forward.py) ----

def native_upfirdn2d(x, k, up=1, down=1, pad=(0, 0)):
    """rosinality ``upfirdn2d_native`` (the op's CPU path): NHWC reshape, zero insertion by
    view + pad, pad / crop, conv with the flipped kernel, stride by slicing."""
    n, c, h, w = x.shape
    t = x.reshape(-1, h, w, 1)
    t = t.view(-1, h, 1, w, 1, 1)
    t = F.pad(t, [0, 0, 0, up - 1, 0, 0, 0, up - 1]).view(-1, h * up, w * up, 1)
    p0, p1 = pad
    t = F.pad(t, [0, 0, max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    t = t[:, max(-p0, 0): t.shape[1] - max(-p1, 0), max(-p0, 0): t.shape[2] - max(-p1, 0), :]
    t = t.permute(0, 3, 1, 2).reshape(-1, 1, t.shape[1], t.shape[2])
    t = F.conv2d(t, torch.flip(k, [0, 1]).view(1, 1, *k.shape))
    t = t.reshape(-1, 1, t.shape[2], t.shape[3]).permute(0, 2, 3, 1)[:, ::down, ::down, :]
    return t.reshape(n, c, t.shape[1], t.shape[2])


def _fused_modconv(x, st, prefix, style, demod=True, up=False):
    b, cin, h, w = x.shape
    weight = st[prefix + ".weight"]
    _, cout, _, k, _ = weight.shape
    s = equal_linear(style, st[prefix + ".modulation.weight"], st[prefix + ".modulation.bias"]).view(b, 1, cin, 1, 1)
    wt = weight / math.sqrt(cin * k * k) * s
    if demod:
        wt = wt * torch.rsqrt(wt.pow(2).sum([2, 3, 4]) + 1e-8).view(b, cout, 1, 1, 1)
    if up:
        wt = wt.transpose(1, 2).reshape(b * cin, cout, k, k)
        out = F.conv_transpose2d(x.view(1, b * cin, h, w), wt, stride=2, groups=b)
        return native_upfirdn2d(out.view(b, cout, *out.shape[-2:]), st[prefix + ".blur.kernel"], pad=(1, 1))
    out = F.conv2d(x.view(1, b * cin, h, w), wt.view(b * cout, cin, k, k), padding=k // 2, groups=b)
    return out.view(b, cout, h, w)


def official_synthesis(st, size, latent, noise=None):
    """rosinality's synthesis with the fused (grouped-conv) modulation and native upfirdn, as the
    official code runs on CPU: W+ (B x L x D) -> image."""
    log_size = int(math.log2(size))
    noise = noise or [st[f"noises.noise_{i}"] for i in range((log_size - 2) * 2 + 1)]

    def styled(x, prefix, style, nz, up=False):
        out = _fused_modconv(x, st, prefix + ".conv", style, up=up) + st[prefix + ".noise.weight"] * nz
        return lrelu(out, st[prefix + ".activate.bias"])

    def rgb(x, prefix, style, skip):
        out = _fused_modconv(x, st, prefix + ".conv", style, demod=False) + st[prefix + ".bias"]
        if skip is not None:
            out = out + native_upfirdn2d(skip, st[prefix + ".upsample.kernel"], up=2, pad=(2, 1))
        return out

    out = styled(st["input.input"].repeat(latent.shape[0], 1, 1, 1), "conv1", latent[:, 0], noise[0])
    skip = rgb(out, "to_rgb1", latent[:, 1], None)
    for k in range(log_size - 2):
        i = 1 + 2 * k
        out = styled(out, f"convs.{2 * k}", latent[:, i], noise[i], up=True)
        out = styled(out, f"convs.{2 * k + 1}", latent[:, i + 1], noise[i + 1])
        skip = rgb(out, f"to_rgbs.{k}", latent[:, i + 2], skip)
    return skip
