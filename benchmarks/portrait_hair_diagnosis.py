"""Where a donor's hair colour is lost in the mask-guided framework (issue 17; results_portrait.md).

    python benchmarks/portrait_hair_diagnosis.py probe  [--local W]   # codes: nearest colour, linear probe
    python benchmarks/portrait_hair_diagnosis.py layers                # hue separation per encoder block
    python benchmarks/portrait_hair_diagnosis.py reach [--steps 200] [colours...]  # can G draw it at all?

Donors are those of ``portrait_hair_transfer.py`` (seed 4242, one face drawn in every hair colour).
``probe``: per colour, the nearest other colour's hair code of the same face, and a ridge probe
z -> hair RGB fitted on 6 faces x 11 colours, tested on 2 more faces. ``layers``: distance between
the blue- and brown-haired activations of the same faces over the brown / light-brown distance,
after each encoder block (0 = input crop). ``reach``: Adam on (a) the hair code z through D_sub, and
(b) the hair feature map itself, to rebuild each donor's own hair with every network frozen.
"""

from __future__ import annotations

import argparse
import time

import torch

from nodes.portrait.model import Batch, MaskGuidedFramework
from nodes.portrait.net import place_features

try:
    from benchmarks.portrait_hair_transfer import COLOURS, HAIR, faces, hair_mean
    from benchmarks.portrait_quality import NAMES, load_framework
except ImportError:  # run as a script from benchmarks/
    from portrait_hair_transfer import COLOURS, HAIR, faces, hair_mean  # type: ignore[no-redef]
    from portrait_quality import NAMES, load_framework  # type: ignore[no-redef]

SIZE = 128


@torch.no_grad()
def probe(m: MaskGuidedFramework, n: int = 8) -> None:
    z, rgb = {}, {}
    for name, c in COLOURS.items():
        img, lab = faces(4242, n, SIZE, c)
        _, codes, _ = m.encode(Batch.of(img, lab))
        z[name], rgb[name] = codes[:, HAIR], hair_mean(img, lab)
    names = list(COLOURS)
    for a in names:
        d = {b: float((z[a] - z[b]).norm(dim=-1).mean()) for b in names if b != a}
        near = sorted(d, key=d.get)[:3]
        print(f"{a:20s} nearest codes: " + ", ".join(f"{b} {d[b]:.2f}" for b in near))
    x = torch.cat([torch.cat([z[k] for k in names]), torch.ones(n * len(names), 1)], 1)
    y = torch.cat([rgb[k] for k in names])
    train = (torch.arange(n * len(names)) % n) < n - 2
    w = torch.linalg.solve(x[train].T @ x[train] + 1e-2 * torch.eye(x.shape[1]), x[train].T @ y[train])
    pred = x @ w
    for i, k in enumerate(names):
        sel = ~train & (torch.arange(len(x)) // n == i)
        print(f"{k:20s} probe {tuple(int(v) for v in pred[sel].mean(0))} vs {tuple(int(v) for v in y[sel].mean(0))}"
              f"  error {float((pred[sel] - y[sel]).norm(dim=-1).mean()):.1f}")


@torch.no_grad()
def layers(m: MaskGuidedFramework, n: int = 6) -> None:
    ae, acts = m.local.parts["hair"], {}
    for name in ("brown", "light brown", "blue"):
        img, lab = faces(4242, n, SIZE, COLOURS[name])
        h = m.crops(Batch.of(img, lab))["hair"]
        out = [h.flatten(1)]
        for block in ae.encoder:
            h = block(h)
            out.append(h.flatten(1))
        out.append(ae.fc_mu(h.flatten(1)))
        acts[name] = out
    for i in range(len(acts["blue"])):
        def d(a: str, b: str, i: int = i) -> float:
            return float((acts[a][i] - acts[b][i]).norm(dim=1).mean())
        where = "input" if i == 0 else ("z" if i == len(acts["blue"]) - 1 else f"block {i}")
        ratio = d("blue", "brown") / d("brown", "light brown")
        print(f"{where:8s} d(blue, brown) / d(brown, light brown) = {ratio:.2f}")


def _render(m: MaskGuidedFramework, feats: dict, b: Batch) -> torch.Tensor:
    comp = place_features(feats, b.centres, m.cfg.feat_size)
    face = m.generator(m.mask_encoder(m.generator_mask(b)), comp)
    return m.fusion(face, m.background(b.image * 2 - 1, (b.labels == 0).unsqueeze(1).float()))


def reach(m: MaskGuidedFramework, colours: list[str], steps: int = 200) -> None:
    m.requires_grad_(False)
    for name in colours:
        img, lab = faces(4242, 3, SIZE, COLOURS[name])
        b = Batch.of(img, lab)
        with torch.no_grad():
            _, codes, _ = m.encode(b)
            feats = m.local.decode_features(codes)
        mask, want = (lab == 10).unsqueeze(1).float(), hair_mean(img, lab)
        for mode in ("z", "feature"):
            t0 = time.time()
            p = (codes[:, HAIR] if mode == "z" else feats["hair"]).clone().requires_grad_(True)
            opt = torch.optim.Adam([p], lr=0.05)
            for _ in range(steps):
                f = dict(feats, hair=m.local.parts["hair"].decode_feature(p) if mode == "z" else p)
                out = _render(m, f, b)
                loss = ((out - (img * 2 - 1)) ** 2 * mask).sum() / mask.sum() / 3
                opt.zero_grad()
                loss.backward()
                opt.step()
            got = hair_mean((out.detach() + 1) / 2, lab)
            print(f"{name:20s} optimise {mode:8s} hair {tuple(int(v) for v in got.mean(0))} vs donor "
                  f"{tuple(int(v) for v in want.mean(0))}: error {float((got - want).norm(dim=-1).mean()):.1f} "
                  f"({time.time() - t0:.0f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["probe", "layers", "reach"])
    ap.add_argument("colours", nargs="*", default=["blue"])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--local", default="", help="other weights for the local embedding")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    names = dict(NAMES, **({"local": args.local} if args.local else {}))
    m = load_framework(names)
    {"probe": lambda: probe(m), "layers": lambda: layers(m),
     "reach": lambda: reach(m, args.colours, args.steps)}[args.what]()


if __name__ == "__main__":
    main()
