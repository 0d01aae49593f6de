"""Train the embedded ``photowct_default`` weights (a script until the training engine lands).

    nice -n 10 python -m nodes.pis.train --encoder random --steps 3000 --out weights

The official decoders were trained to invert a fixed, ImageNet-trained normalised VGG19 with a
pixel reconstruction loss plus a feature reconstruction loss (WCT, Li et al. 2017, Sec. 3.1):
``L = ||I_o - I_i||^2 + lambda ||Phi(I_o) - Phi(I_i)||^2``. That VGG cannot be fetched here, so:

- ``--encoder random``: the encoder is a *fixed* random (He-normal, seeded) half-width VGG
  prefix; only the four decoders are trained, with the official losses.
- ``--encoder joint``: the encoder is trained jointly with the decoders (reconstruction only
  shapes it; the feature loss uses detached targets so it cannot collapse the features).
- ``--encoder distilled --encoder-weights F``: the encoder is fixed to ``F``, a ``pis.Encoder``
  export of ``graphs/photowct_train.json`` (feature distillation from an ImageNet network, stage 1);
  the decoders are trained on it as for ``random`` (stage 2).

Both share one encoder across the four levels (e1..e3 are copies of e4's prefix in the saved
file, which keeps the official eight-module layout). Data: ``data.Photos`` random crops of the
photos bundled with scikit-image / scikit-learn (``coffee`` held out) plus procedural images.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nodes.data.photos import PhotoCrops, photo, procedural, random_crop
from nodes.pis.photowct import PhotoWCTNet, VGGDecoder, VGGEncoder

SMALL_WIDTHS = (32, 64, 128, 256)
HELD_OUT = "coffee"


def init_random_encoder(enc: VGGEncoder, seed: int) -> None:
    """He-normal convs, zero biases; conv0 = identity (RGB passes through)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, mod in enc.named_children():
            if name == "conv0":
                mod.weight.copy_(torch.eye(3)[:, :, None, None])
                mod.bias.zero_()
                continue
            fan_in = mod.weight[0].numel()
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
            mod.bias.zero_()


def sync_encoders(net: PhotoWCTNet) -> None:
    """Copy e4's weights into e1..e3 (they are its prefixes)."""
    src = net.e4.state_dict()
    for k in (1, 2, 3):
        enc = net.encoder(k)
        enc.load_state_dict({n: src[n] for n in enc.state_dict()})


def level_losses(enc: VGGEncoder, decoders: list[VGGDecoder], x: torch.Tensor,
                 feat_weight: float) -> tuple[torch.Tensor, list[float]]:
    """Sum over levels of pixel MSE + feat_weight * relative feature MSE; per-level pixel MSEs."""
    # One pass of the level-4 encoder gives every level's feature and pool switches.
    _, feats, pools = enc.encode_levels(x)
    total = x.new_zeros(())
    pix = []
    for k, dec in enumerate(decoders, start=1):
        rec = dec(feats[k - 1], pools[: k - 1])
        lp = F.mse_loss(rec, x)
        target = feats[k - 1].detach()
        f_rec = _encode_to(enc, rec, k)
        lf = F.mse_loss(f_rec, target) / target.pow(2).mean().clamp_min(1e-8)
        total = total + lp + feat_weight * lf
        pix.append(float(lp.detach()))
    return total, pix


def _encode_to(enc: VGGEncoder, x: torch.Tensor, level: int) -> torch.Tensor:
    h = enc.conv0(x)
    for name, _, _ in enc.plan:
        if name.startswith("pool"):
            h = F.max_pool2d(h, 2, 2)
        else:
            h = F.relu(getattr(enc, name)(h))
            if name == f"conv{level}_1":
                return h
    return h


def held_out_batch(size: int, n: int = 8) -> torch.Tensor:
    """Crops of the held-out photo and procedural images from seeds the training never draws."""
    rng = np.random.default_rng(12345)
    items = [random_crop(photo(HELD_OUT), rng, size) for _ in range(n // 2)]
    items += [procedural(np.random.default_rng([999_999, i]), size) for i in range(n - n // 2)]
    return torch.stack(items)


@torch.no_grad()
def evaluate(net: PhotoWCTNet, x: torch.Tensor) -> dict[str, float]:
    """Reconstruction PSNR (dB, clamped output) per level on a held-out batch."""
    out = {}
    for k in (1, 2, 3, 4):
        feat, pools = net.encoder(k)(x)
        rec = net.decoder(k)(feat, pools).clamp(0, 1)
        mse = float(F.mse_loss(rec, x))
        out[f"psnr_level{k}_db"] = round(10 * math.log10(1.0 / max(mse, 1e-12)), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", choices=["random", "joint", "distilled"], default="random")
    ap.add_argument("--encoder-weights", default="", help="--encoder distilled: the pis.Encoder export")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--feat-weight", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=0, help="stop early after this wall time")
    ap.add_argument("--out", default="weights", help="directory for NAME.safetensors + manifest")
    ap.add_argument("--name", default="photowct_default")
    ap.add_argument("--ckpt", default="", help="scratch checkpoint path (resume if present)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    net = PhotoWCTNet(SMALL_WIDTHS)
    init_random_encoder(net.e4, args.seed)
    if args.encoder == "distilled":
        if not args.encoder_weights:
            ap.error("--encoder distilled needs --encoder-weights (graphs/photowct_train.json's export)")
        from safetensors.torch import load_file

        from nodes.pis.distill import encoder_state

        net.e4.load_state_dict(encoder_state(load_file(args.encoder_weights)))
    decoders = [net.decoder(k) for k in (1, 2, 3, 4)]
    params = [p for d in decoders for p in d.parameters()]
    if args.encoder == "joint":
        params += list(net.e4.parameters())
    else:
        net.e4.requires_grad_(False)
    opt = torch.optim.Adam(params, lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)) * 0.99 + 0.01)
    data = PhotoCrops([n for n in ("astronaut", "chelsea", "rocket", "hubble", "ihc", "retina",
                                   "motorcycle", "china", "flower")],
                      args.size, args.steps * args.batch, args.seed, procedural_fraction=0.3)
    start = 0
    ckpt = Path(args.ckpt) if args.ckpt else None
    if ckpt and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = int(state["step"])
        print(f"resumed at step {start}", flush=True)
    val = held_out_batch(args.size)
    t0 = time.time()
    step = start
    for step in range(start, args.steps):
        batch = torch.stack([data[step * args.batch + j]["image"] for j in range(args.batch)])
        loss, pix = level_losses(net.e4, decoders, batch, args.feat_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            el = time.time() - t0
            print(json.dumps({"step": step, "loss": round(float(loss), 5),
                              "pix_mse": [round(p, 5) for p in pix], "elapsed_s": round(el, 1)}),
                  flush=True)
        if ckpt and step % 200 == 199:
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "step": step + 1}, ckpt)
        if args.minutes and time.time() - t0 > args.minutes * 60:
            print(f"time budget reached at step {step + 1}", flush=True)
            break
    steps_done = step + 1
    sync_encoders(net)
    quality = evaluate(net, val)
    quality["held_out"] = f"{HELD_OUT} crops + procedural seeds 999999, {args.size}px, clamped output"
    print(json.dumps(quality), flush=True)
    from nodegraph.weights import export

    cmd = "python -m nodes.pis.train " + " ".join(sys.argv[1:] if argv is None else argv)
    provenance = {
        "command": cmd,
        "data": "data.Photos crops of bundled scikit-image/scikit-learn photos (astronaut, chelsea, "
                "rocket, hubble, ihc, retina, motorcycle, china, flower; coffee held out) + 30% "
                f"procedural images, {args.size}px",
        "steps": steps_done, "batch": args.batch, "encoder": args.encoder,
        "encoder_init": (f"distilled: {args.encoder_weights}" if args.encoder == "distilled"
                         else f"He-normal seed {args.seed}, conv0 identity"),
        "loss": f"pixel MSE + {args.feat_weight} x relative feature MSE per level",
        "wall_time_s": round(time.time() - t0, 1), "threads": args.threads,
    }
    path = export(args.name, net.state_dict(), "pis.PhotoWCT", provenance, quality,
                  directory=Path(args.out), config={"widths": list(SMALL_WIDTHS)})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
