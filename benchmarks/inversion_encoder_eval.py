"""Held-out figures of a domain-guided encoder, and the calibration of inversion.Optimize's domain check.

    python benchmarks/inversion_encoder_eval.py [--encoder idinvert_encoder_faces64] [--n 64] [--json OUT]

``--encoder``: a manifest name, a .safetensors export, or a trainer checkpoint
(``RUN/checkpoints/step_*.safetensors``: its ``param/enc/*`` tensors), so a run can be watched while
it trains. ``--generator`` (default stylegan2_faces64) must be the generator it was trained for.

Reports, all on [0, 1] images, E in eval mode (BN running statistics), fixed noise:

- reconstruction of ``--n`` held-out faces (data.Portraits seed 11; training used seed 0):
  MSE of G(E(x)) to x (mean, 95th percentile, max) and PSNR; for scale, the MSE of the one image
  G(w_avg) (every layer at the mean code) to the same faces;
- the same MSE for pictures that are not procedural faces: the four example photos (full frame,
  resized to 64 px), the astronaut's face aligned by face.LandmarkParser when MediaPipe is
  installed, uniform noise, flat grey, and a flipped-upside-down face (a face the GAN never draws);
- ``inversion.Optimize``'s face check (nodes/inversion/domain.py) on the same pictures; the
  reconstruction MSE above is the criterion that was tried first and does not separate them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nodegraph  # noqa: E402
from nodegraph import weights as weights_mod  # noqa: E402
from nodes.inversion import domain  # noqa: E402
from nodes.inversion.convert import encoder_config_of  # noqa: E402
from nodes.inversion.net import Encoder  # noqa: E402

PHOTOS = ("photo_astronaut.jpg", "photo_chelsea.jpg", "photo_china.jpg", "photo_motorcycle.jpg")


def load_encoder(ref: str) -> Encoder:
    """E from a manifest name / export, or from a trainer checkpoint's ``param/enc/`` tensors."""
    if ref.endswith(".safetensors") and Path(ref).is_file():
        state = load_file(ref)
        if any(k.startswith("param/enc/") for k in state):
            state = {k[len("param/enc/"):]: v for k, v in state.items() if k.startswith("param/enc/")}
    else:
        state = weights_mod.load(ref)
    net = Encoder(encoder_config_of(state, ref))
    net.load_state_dict(state)
    return net.eval()


def reconstruct_mse(E: Encoder, G, x: torch.Tensor) -> torch.Tensor:
    """Per-image mean (G(E(x)) - x)^2 on [0, 1] (the domain check's quantity)."""
    with torch.no_grad():
        rec = ((G(E(x * 2 - 1)) + 1) / 2).clamp(0, 1)
    return (rec - x).pow(2).flatten(1).mean(1)


def non_faces(size: int) -> dict[str, torch.Tensor]:
    out = {}
    for name in PHOTOS:
        img = nodegraph.create("io.LoadImage", path=str(ROOT / "examples" / name))()["image"]
        out[name] = F.interpolate(img, size=(size, size), mode="area")
    try:
        photo = nodegraph.create("io.LoadImage", path=str(ROOT / "examples" / PHOTOS[0]))()["image"]
        face = nodegraph.create("face.LandmarkParser", align=True, size=256)(image=photo)["image"]
        out["astronaut face, aligned"] = F.interpolate(face, size=(size, size), mode="area")
    except Exception as e:  # MediaPipe is an optional extra
        print(f"(aligned astronaut skipped: {type(e).__name__})")
    g = torch.Generator().manual_seed(0)
    out["uniform noise"] = torch.rand(1, 3, size, size, generator=g)
    out["flat grey"] = torch.full((1, 3, size, size), 0.5)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default="idinvert_encoder_faces64")
    ap.add_argument("--generator", default="stylegan2_faces64")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    E = load_encoder(a.encoder)
    x = nodegraph.create("data.Portraits", size=E.size, count=a.n, seed=a.seed, batch_size=a.n)()["image"]
    G = nodegraph.create("stylegan.Generator", weights=a.generator)(wplus=E(x[:1] * 2 - 1).detach())["model"].eval()
    mse = reconstruct_mse(E, G, x)
    psnr = (-10 * torch.log10(mse.clamp_min(1e-10))).mean()
    res = {"held_out": {"data": f"data.Portraits seed {a.seed}, {a.n} faces, {E.size} px (training used seed 0)",
                        "mse_mean": round(float(mse.mean()), 5), "mse_p95": round(float(mse.quantile(0.95)), 5),
                        "mse_max": round(float(mse.max()), 5), "psnr_db": round(float(psnr), 2)}}
    with torch.no_grad():
        avg = ((G(G.latent_avg.view(1, 1, -1).expand(1, G.n_latent, -1)) + 1) / 2).clamp(0, 1)
    res["held_out"]["mse_mean_of_G(w_avg)"] = round(float((avg - x).pow(2).flatten(1).mean(1).mean()), 5)
    flipped = reconstruct_mse(E, G, x[:8].flip(2))
    others = {k: float(reconstruct_mse(E, G, v)[0]) for k, v in non_faces(E.size).items()}

    others["faces upside down (8, max / min)"] = [round(float(flipped.max()), 5), round(float(flipped.min()), 5)]
    res["not_faces_mse"] = {k: v if isinstance(v, list) else round(v, 5) for k, v in others.items()}
    parser = domain.load_parser("face_parser_default")
    eyes, conf = domain.face_scores(parser, x)
    pics = non_faces(E.size)
    p_eyes, p_conf = domain.face_scores(parser, torch.cat(list(pics.values())))
    res["face_check"] = {
        "criteria": f"eyes >= {domain.EYE_MIN}, confidence >= {domain.CONF_MIN} (nodes/inversion/domain.py)",
        "held_out_refused": len(domain.not_faces(parser, x)),
        "held_out_min_eyes_conf": [round(float(eyes.min()), 4), round(float(conf.min()), 3)],
        "not_faces_eyes_conf": {k: [round(float(e), 4), round(float(c), 3)]
                                for k, e, c in zip(pics, p_eyes, p_conf, strict=True)},
        "not_faces_passed": [k for k, e, c in zip(pics, p_eyes, p_conf, strict=True)
                             if e >= domain.EYE_MIN and c >= domain.CONF_MIN]}
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
