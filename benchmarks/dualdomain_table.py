"""The DDS poster's table re-measured on our domains, the FD-vs-iteration curve and the backbone
ablation (Bazazian et al., CVPR-W 2022, poster tables; research note sec. 3 "Metrics").

    python benchmarks/dualdomain_table.py [--targets sketch caricature] [--n 16] [--iterations 200]
        [--every 25] [--n-ref 256] [--perceptual-size 128] [--backbones effnet_lite0 vgg16]
        [--stand-in] [--target-weights T=PATH ..] [--generator source|target] [--out runs/dds_table]

For each target domain T (G_t = ``stylegan2_faces64_<T>``), mask M1 (eyes + nose + mouth,
``dds_segmenter_faces64_enm``) and M2 (hair, ``dds_segmenter_faces64_hair``) and direction A
(pass D1: x_t's part inside y_s, x_s outside) and B (pass D2: x_s's part inside y_s, x_t outside
1 - y_t), ``n`` seeds go through one graph (G_s, G_t, the two segmenters on both, one
``dualdomain.LatentOptimize`` per mask and pass) with ``nodegraph.map`` over ``z.seed``. The
DDS outputs {x_hat} are compared with

- D_s: ``n_ref`` G_s samples (truncation 0.7, as x_s), seeds 100000.. (not the DDS seeds);
- {x_c}: the naive crossovers of the same seeds and direction;
- D_t: ``n_ref`` G_t samples (no truncation, as x_t), seeds 100000..

FD-Lite0 (Fréchet distance of EfficientNet-Lite0 pooled features, ``nodes/features``: NOT FID --
the Inception weights are not shipped -- and, with n = 16 DDS outputs, dominated by small-sample
bias: compare rows with each other, not with the poster's FIDs); SSIM and PSNR paired per seed
(x_hat_i against x_s_i, x_c_i, x_t_i), mean over seeds. The curve: FD-Lite0 of G_s(snapshot)
against D_t and D_s every ``every`` iterations (iteration 0 = the mean-code init), one PNG per
target; ``--generator target`` makes x_hat with G_t (the poster's figure; G_t(snapshot) in the
curve). Ablation (M2, as the poster): the same rows per backbone; ``vgg16`` runs only where
converted weights exist (``nodegraph convert vgg16``). ``--stand-in`` runs with G_t = G_s and a
random segmenter where the weights are not shipped yet (a dry run of the script, not a result).
Writes ``OUT/table.md``, ``OUT/fd_curve_<T>.png`` and ``OUT/raw.json``; prints the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nodegraph  # noqa: E402
from nodegraph.weights import read_manifest  # noqa: E402
from nodes.dualdomain.optimize import mean_code, normalize_noise_  # noqa: E402
from nodes.features.frechet import extractor, stats_of  # noqa: E402

MASKS = {"M1": "dds_segmenter_faces64_enm", "M2": "dds_segmenter_faces64_hair"}
PASSES = {"A": "D1", "B": "D2"}
REF_SEED = 100_000


def dds_graph(target: str, seg: dict[str, str], a: argparse.Namespace, backbone: str, masks: list[str]) -> dict:
    """One graph: z -> G_s, G_t, both segmenters on both, one LatentOptimize per mask and pass."""
    nodes: dict = {
        "z": {"type": "stylegan.SampleZ", "params": {"batch": 1, "seed": 0}},
        "gen_s": {"type": "stylegan.Generator", "params": {"weights": "stylegan2_faces64", "truncation": 0.7},
                  "inputs": {"z": "z.z"}},
        "gen_t": {"type": "stylegan.Generator", "params": {"weights": target}, "inputs": {"z": "z.z"}},
    }
    for m in masks:
        for side in ("s", "t"):
            nodes[f"seg_{side}_{m}"] = {"type": "dualdomain.PartSegmenter",
                                        "params": {"in_channels": 288, "weights": seg[m]},
                                        "inputs": {"features": f"gen_{side}.features"}}
        for d, pass_name in PASSES.items():
            nodes[f"opt_{m}_{d}"] = {
                "type": "dualdomain.LatentOptimize",
                "params": {"pass_name": pass_name, "iterations": a.iterations, "every": a.every,
                           "perceptual_size": a.perceptual_size, "backbone": backbone,
                           "generator": a.generator},
                "inputs": {"generator": "gen_s.model", "target_generator": "gen_t.model", "source": "gen_s.image",
                           "source_mask": f"seg_s_{m}.mask", "target": "gen_t.image",
                           "target_mask": f"seg_t_{m}.mask"}}
    return {"nodegraph": 1, "name": f"dds_table_{Path(target).stem}_{backbone}", "nodes": nodes}


def run_seeds(graph: dict, seeds: list[int], out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{graph['name']}.json"
    path.write_text(json.dumps(graph, indent=1))
    outputs = [n for n in graph["nodes"] if n.startswith("opt_")] + ["gen_s", "gen_t"]
    res = []
    t = time.time()
    for r in nodegraph.map(path, over={"z.seed": seeds}, out_dir=out, outputs=outputs, resume=False, lock=False):
        if r.status != "ok":
            raise RuntimeError(f"seed {r.item}: {r.error}")
        res.append(r.results)
        print(f"    seed {r.index + 1}/{len(seeds)} done ({time.time() - t:.0f} s, load {load()})", flush=True)
    return res


def samples(weights: str, psi: float, n: int) -> torch.Tensor:
    g = nodegraph.create("stylegan.Generator", weights=weights, truncation=psi)
    z = torch.cat([torch.randn(1, 512, generator=torch.Generator().manual_seed(REF_SEED + i)) for i in range(n)])
    with torch.no_grad():
        return torch.cat([g(z=z[i:i + 32])["image"] for i in range(0, n, 32)])


def paired(metric: str, a: torch.Tensor, b: torch.Tensor) -> float:
    return float(nodegraph.create(f"metric.{metric}")(a=a, b=b)["value"])


def curve(results: list[dict], key: str, a: argparse.Namespace, refs: dict, ext,
          weights: str = "stylegan2_faces64") -> dict[str, list[float]]:
    """FD-Lite0 of G(w_k) over the seeds against D_t and D_s at iterations 0, every, 2 every, ..
    (G = the generator that made x_hat: ``weights``)."""
    gen = nodegraph.create("stylegan.Generator", weights=weights)
    gen.ensure_setup()
    G = gen.net
    noise = G.make_noise(1, torch.Generator().manual_seed(1))  # LatentOptimize's seed 0 -> noise seed 1
    normalize_noise_(noise)
    snaps = torch.stack([r[key]["snapshots"][:, 0] for r in results], 1)  # K x n x L x D
    w0 = mean_code(G, 10000, 0).expand(snaps.shape[1], -1, -1)
    out: dict[str, list[float]] = {"iteration": [0], "D_t": [], "D_s": []}
    with torch.no_grad():
        for k, w in enumerate([w0, *snaps]):
            if k:
                out["iteration"].append(k * a.every)
            imgs = torch.cat([((G.synthesis(w[i:i + 1], noise)[0] + 1) / 2).clamp(0, 1) for i in range(w.shape[0])])
            st = stats_of([imgs], ext)
            out["D_t"].append(st.frechet(refs["D_t"]))
            out["D_s"].append(st.frechet(refs["D_s"]))
    return out


def rows_for(results: list[dict], masks: list[str], refs: dict, ext) -> list[dict]:
    x_s = torch.cat([r["gen_s"]["image"] for r in results])
    x_t = torch.cat([r["gen_t"]["image"] for r in results])
    rows = []
    for m in masks:
        for d in PASSES:
            key = f"opt_{m}_{d}"
            x_hat = torch.cat([r[key]["image"] for r in results])
            x_c = torch.cat([r[key]["crossover"] for r in results])
            st = stats_of([x_hat], ext)
            row = {"mask": m, "direction": d, "pass": PASSES[d],
                   "final_loss": float(torch.stack([r[key]["loss"][-1] for r in results]).mean())}
            for name, ref, st_ref in (("D_s", x_s, refs["D_s"]), ("x_c", x_c, stats_of([x_c], ext)),
                                      ("D_t", x_t, refs["D_t"])):
                row[f"fd_{name}"] = st.frechet(st_ref)
                row[f"ssim_{name}"] = paired("SSIM", x_hat, ref)
                row[f"psnr_{name}"] = paired("PSNR", x_hat, ref)
            rows.append(row)
    return rows


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def plot_curves(curves: dict[str, dict[str, list[float]]], path: Path, title: str) -> None:
    """Line plot (PIL, no matplotlib here): FD vs iteration, vs D_t thick, vs D_s thin, one colour
    per mask / direction."""
    from PIL import Image, ImageDraw

    w, h, left, right, top, bottom = 720, 440, 60, 170, 34, 40
    img = Image.new("RGB", (w, h), "white")
    dr = ImageDraw.Draw(img)
    xs = [x for c in curves.values() for x in c["iteration"]]
    ys = [y for c in curves.values() for k in ("D_t", "D_s") for y in c[k]]
    x0, x1, y0, y1 = min(xs), max(xs) or 1, 0.0, max(ys) * 1.05 or 1.0

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0 or 1) * (w - left - right),
                h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom))

    dr.rectangle([left, top, w - right, h - bottom], outline="black")
    for i in range(6):
        yv = y0 + (y1 - y0) * i / 5
        _, yy = px(x0, yv)
        dr.line([left - 4, yy, left, yy], fill="black")
        dr.text((4, yy - 6), f"{yv:.0f}", fill="black")
        xv = x0 + (x1 - x0) * i / 5
        xx, _ = px(xv, y0)
        dr.line([xx, h - bottom, xx, h - bottom + 4], fill="black")
        dr.text((xx - 10, h - bottom + 8), f"{xv:.0f}", fill="black")
    dr.text((left, 8), title, fill="black")
    dr.text(((w - right) // 2 - 20, h - 16), "iteration", fill="black")
    for i, (label, c) in enumerate(curves.items()):
        col = COLOURS[i % len(COLOURS)]
        for key, width in (("D_t", 3), ("D_s", 1)):
            dr.line([px(x, y) for x, y in zip(c["iteration"], c[key], strict=True)], fill=col, width=width)
        ly = top + 10 + 34 * i
        dr.line([w - right + 10, ly, w - right + 30, ly], fill=col, width=3)
        dr.text((w - right + 34, ly - 6), f"{label} vs D_t", fill="black")
        dr.line([w - right + 10, ly + 14, w - right + 30, ly + 14], fill=col, width=1)
        dr.text((w - right + 34, ly + 8), f"{label} vs D_s", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp)
    tmp.replace(path)


def fmt_rows(rows: list[dict], label: str) -> list[str]:
    out = []
    for r in rows:
        cells = [f"{r[f'fd_{k}']:.1f} / {r[f'ssim_{k}']:.3f} / {r[f'psnr_{k}']:.2f}" for k in ("D_s", "x_c", "D_t")]
        out.append(f"| {label} | {r['mask']} | {r['direction']} ({r['pass']}) | " + " | ".join(cells)
                   + f" | {r['final_loss']:.4f} |")
    return out


HEADER = ["| target | mask | direction | vs D_s: FD / SSIM / PSNR | vs {x_c} | vs D_t | final loss |",
          "|---|---|---|---|---|---|---|"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", nargs="+", default=["sketch", "caricature"])
    ap.add_argument("--n", type=int, default=16, help="DDS seeds (0 .. n-1)")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--every", type=int, default=25, help="snapshot step for the FD curve")
    ap.add_argument("--n-ref", type=int, default=256, help="samples in D_s and D_t")
    ap.add_argument("--perceptual-size", type=int, default=128)
    ap.add_argument("--backbones", nargs="+", default=["effnet_lite0", "vgg16"])
    ap.add_argument("--stand-in", action="store_true", help="G_t = G_s / random segmenter for missing weights")
    ap.add_argument("--target-weights", nargs="*", default=[], metavar="T=PATH",
                    help="G_t of target T from a .safetensors file instead of stylegan2_faces64_<T> (e.g. an "
                         "interim checkpoint's export; the table then says so)")
    ap.add_argument("--generator", choices=["source", "target"], default="source",
                    help="which generator makes x_hat (LatentOptimize.generator): source = official code, "
                         "target = the poster's figure")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "dds_table")
    a = ap.parse_args()
    t_start = time.time()
    print(f"load average before: {load()}  (threads {torch.get_num_threads()})", flush=True)
    manifest = read_manifest()
    seg = {m: (w if w in manifest else "") for m, w in MASKS.items()}
    notes = [f"segmenter {m}: {w} NOT SHIPPED, random init (stand-in)" for m, w in MASKS.items() if not seg[m]]
    if notes and not a.stand_in:
        sys.exit("segmenter weights missing: " + "; ".join(notes) + " (--stand-in for a dry run)")
    ext = extractor("effnet_lite0")
    refs_s = stats_of([samples("stylegan2_faces64", 0.7, a.n_ref)], ext)
    seeds = list(range(a.n))
    lines, raw = [], {"args": {k: str(v) for k, v in vars(a).items()}, "targets": {}}
    given = dict(tw.split("=", 1) for tw in a.target_weights)
    for target in a.targets:
        weights = given.get(target, f"stylegan2_faces64_{target}")
        if target in given:
            notes.append(f"{target}: G_t from {weights} (not the shipped stylegan2_faces64_{target})")
        elif weights not in manifest:
            if not a.stand_in:
                notes.append(f"{target}: {weights} not in the manifest, skipped")
                continue
            notes.append(f"{target}: {weights} NOT SHIPPED, G_t = stylegan2_faces64 (stand-in)")
            weights = "stylegan2_faces64"
        refs = {"D_s": refs_s, "D_t": stats_of([samples(weights, 1.0, a.n_ref)], ext)}
        raw["targets"][target] = {"rows": {}, "curves": {}}
        for backbone in a.backbones:
            if backbone == "vgg16" and "vgg16" not in manifest:
                notes.append("backbone vgg16: no converted weights (`nodegraph convert vgg16` needs torchvision's "
                             "vgg16 .pth, not available offline), not run")
                continue
            masks = ["M1", "M2"] if backbone == a.backbones[0] else ["M2"]
            print(f"{target} / {backbone}: {a.n} seeds x {len(masks) * 2} passes x {a.iterations} iterations",
                  flush=True)
            results = run_seeds(dds_graph(weights, seg, a, backbone, masks), seeds, a.out)
            rows = rows_for(results, masks, refs, ext)
            raw["targets"][target]["rows"][backbone] = rows
            if backbone == a.backbones[0]:
                g_hat = weights if a.generator == "target" else "stylegan2_faces64"
                curves = {f"{m} {d}": curve(results, f"opt_{m}_{d}", a, refs, ext, g_hat)
                          for m in masks for d in PASSES}
                raw["targets"][target]["curves"] = curves
                plot_curves(curves, a.out / f"fd_curve_{target}.png",
                            f"FD-Lite0 of G_s(w_k) vs iteration, target {target}, n = {a.n}")
            lines += fmt_rows(rows, f"{target} [{backbone}]")
            (a.out / "raw.json").write_text(json.dumps(raw, indent=1))
    table = [f"n = {a.n} seeds, {a.iterations} iterations, x_hat from the {a.generator} generator, "
             f"perceptual size {a.perceptual_size}, D_s / D_t "
             f"{a.n_ref} samples each; {time.time() - t_start:.0f} s; load average after: {load()}", "",
             *HEADER, *lines, "", *[f"- {n}" for n in dict.fromkeys(notes)]]
    (a.out / "table.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
