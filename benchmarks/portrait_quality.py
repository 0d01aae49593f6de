"""Quality of the trained mask-guided portrait networks on held-out procedural faces.

    python benchmarks/portrait_quality.py [--count 48] [--seed 999] [--record]

Measures, with the weights the graphs use (``mask_guided_*``):

- paired reconstruction G(x, m, x, m) vs x: PSNR / SSIM (metric.PSNR / metric.SSIM);
- mask equivariance: P_F's pixel accuracy on the rebuilt faces and on mask-to-face outputs
  (source i on the mask of face i+1), against the target mask;
- embedding swaps (style transfer, section 4.4.3): face i keeps its mask and background and
  takes the hair / mouth (lips) / eye codes of face i+1; the region's mean colour in the output
  is compared with the donor's (measured on the donor image, as data.Portraits' ``colors``).
  ``before`` = distance of the un-swapped rebuild to the donor's colour, ``after`` = of the swap;
  ``moved`` = 1 - after / before (1: the colour fully moved to the donor's). RGB distances in 0..255.

``--record`` writes benchmarks/results_portrait.md and adds the figures to the manifest entries.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from nodegraph import weights as W
from nodes.common.metrics import PSNR, SSIM
from nodes.data.portraits import ProceduralPortraits
from nodes.portrait.model import Batch, MaskGuidedFramework
from nodes.portrait.net import PARTS
from nodes.portrait.nodes import LocalEmbedding as _LE
from nodes.portrait.nodes import config_of, load_part

ROOT = Path(__file__).resolve().parent.parent
NAMES = {"local": "mask_guided_local", "mask_encoder": "mask_guided_mask_encoder",
         "generator": "mask_guided_generator", "background": "mask_guided_background",
         "fusion": "mask_guided_fusion"}
SWAPS = {"hair": (("hair",), (10,)), "lips": (("mouth",), (7, 9)), "eyes": (("l_eye", "r_eye"), (4, 5))}


def load_framework(names: dict[str, str] = NAMES) -> MaskGuidedFramework:
    """The framework with every network loaded from its exported weights (config from the manifest)."""
    entry = W.read_manifest(W.resolve(names["local"]).parent).get(names["local"], {})
    params = (entry.get("config") or {}).get("params", {})
    cfg = config_of(_LE.Params(**{k: v for k, v in params.items() if k != "weights"}))
    model = MaskGuidedFramework(cfg)
    for prefix, name in names.items():
        load_part(getattr(model, prefix), name, prefix)
    return model.eval()


def region_mean(image: torch.Tensor, labels: torch.Tensor, ids: tuple[int, ...]) -> torch.Tensor | None:
    m = torch.isin(labels, torch.tensor(ids))
    if int(m.sum()) < 4:
        return None
    return image.permute(1, 2, 0)[m].mean(0)


def load_parser() -> torch.nn.Module | None:
    try:
        from nodes.face.nodes import load_unet_parser

        return load_unet_parser()
    except Exception as e:  # the parser is optional for this benchmark
        print(f"no parser ({e}); skipping mask-equivariance figures")
        return None


@torch.no_grad()
def measure(count: int = 48, seed: int = 999, batch: int = 8, names: dict[str, str] = NAMES) -> dict:
    torch.manual_seed(0)
    model = load_framework(names)
    size = model.cfg.size
    ds = ProceduralPortraits(count, size, seed=seed)
    items = [ds[i] for i in range(count)]
    img = torch.stack([it["image"] for it in items])
    lab = torch.stack([it["labels"] for it in items])
    parser = load_parser()
    recs, m2fs, swaps = [], [], {k: [] for k in SWAPS}
    t0 = time.perf_counter()
    for s in range(0, count, batch):
        b = Batch.of(img[s:s + batch], lab[s:s + batch])
        _, codes, _ = model.encode(b)
        recs.append((model.render(codes, b) + 1) / 2)
        tgt = b.roll(-1)  # source i on the mask and background of face i+1
        m2fs.append((model.render(codes, tgt) + 1) / 2)
        for k, (parts, _) in SWAPS.items():
            mixed = codes.clone()
            for p in parts:
                j = PARTS.index(p)
                mixed[:, j] = codes.roll(-1, 0)[:, j]  # face i takes face i+1's component
            swaps[k].append((model.render(mixed, b) + 1) / 2)
    seconds = (time.perf_counter() - t0) / count
    rec = torch.cat(recs).clamp(0, 1)
    out: dict = {"faces": count, "seed": seed, "size": size,
                 "psnr": float(PSNR()(a=rec, b=img)["value"]), "ssim": float(SSIM()(a=rec, b=img)["value"]),
                 "seconds_per_face_all_renders": round(seconds, 3)}
    if parser is not None:
        tgt_lab = torch.cat([lab[s:s + batch].roll(-1, 0) for s in range(0, count, batch)])
        m2f = torch.cat(m2fs).clamp(0, 1)
        out["parse_acc_rebuilt"] = float((parser(rec).argmax(1) == lab).float().mean())
        out["parse_acc_mask_to_face"] = float((parser(m2f).argmax(1) == tgt_lab).float().mean())
        out["parse_acc_real"] = float((parser(img).argmax(1) == lab).float().mean())
    for k, (_, ids) in SWAPS.items():
        sw = torch.cat(swaps[k]).clamp(0, 1)
        before, after, fid = [], [], []
        for i in range(count):
            j = (i // batch) * batch + ((i % batch) + 1) % min(batch, count - (i // batch) * batch)
            own, donor = region_mean(img[i], lab[i], ids), region_mean(img[j], lab[j], ids)
            r, s_ = region_mean(rec[i], lab[i], ids), region_mean(sw[i], lab[i], ids)
            if own is None or donor is None:
                continue
            before.append(float((r - donor).norm()) * 255)
            after.append(float((s_ - donor).norm()) * 255)
            fid.append(float((r - own).norm()) * 255)
        n = len(before)
        mb, ma = sum(before) / n, sum(after) / n
        out[f"swap_{k}"] = {"pairs": n, "rebuild_colour_error": round(sum(fid) / n, 2),
                            "before": round(mb, 2), "after": round(ma, 2), "moved": round(1 - ma / mb, 3)}
    return out


def record(res: dict, train_note: str = "") -> None:
    lines = ["# Mask-guided portrait editing: measured quality", "",
             "Held-out procedural faces (`data.Portraits` seed {seed}, {faces} faces, {size} px), the "
             "exported `mask_guided_*` weights. Command: `python benchmarks/portrait_quality.py --record`.".format(
                 **res), "",
             "| measure | value |", "|---|---|",
             f"| paired reconstruction PSNR (dB) | {res['psnr']:.2f} |",
             f"| paired reconstruction SSIM | {res['ssim']:.3f} |"]
    for k in ("parse_acc_real", "parse_acc_rebuilt", "parse_acc_mask_to_face"):
        if k in res:
            lines.append(f"| P_F pixel accuracy, {k[10:].replace('_', ' ')} vs its mask | {res[k]:.3f} |")
    lines += ["", "Embedding swap (face i takes face i+1's component code; region mean colour, RGB "
              "distance in 0..255 to the donor's colour):", "",
              "| component | pairs | rebuild error (own colour) | before swap | after swap | moved |",
              "|---|---|---|---|---|---|"]
    for k in SWAPS:
        s = res[f"swap_{k}"]
        lines.append(f"| {k} | {s['pairs']} | {s['rebuild_colour_error']:.1f} | {s['before']:.1f} | "
                     f"{s['after']:.1f} | {s['moved']:.2f} |")
    lines += ["", f"CPU time: {res['seconds_per_face_all_renders']} s per face for its 5 renders "
              "(rebuild, mask-to-face, 3 swaps), 1 thread, shared machine.", ""]
    prov = W.read_manifest().get(NAMES["local"], {}).get("provenance", {})
    if prov:
        lines += ["## How the weights were made", "",
                  f"`{prov.get('command')}` ({prov.get('steps')} steps, batch {prov.get('batch_size')} sources "
                  f"= {2 * int(prov.get('batch_size') or 0)} targets per step, device {prov.get('device')}, "
                  f"graph sha256 {str(prov.get('graph_sha256'))[:12]}), after `nodegraph train "
                  "graphs/face_parser_train.json` (the frozen P_F of the parsing loss).", ""]
    if train_note:
        lines += [train_note, ""]
    (ROOT / "benchmarks" / "results_portrait.md").write_text("\n".join(lines))
    manifest = W.read_manifest()
    quality = {"heldout_seed": res["seed"], "faces": res["faces"], "psnr": round(res["psnr"], 3),
               "ssim": round(res["ssim"], 4)}
    quality.update({k: round(v, 4) for k, v in res.items() if k.startswith("parse_acc")})
    quality.update({k: v for k, v in res.items() if k.startswith("swap_")})
    for name in NAMES.values():
        entry = manifest[name]
        tensors = W.load(name)
        q = dict(entry.get("quality") or {}, heldout=quality)
        W.export(name, tensors, entry["node_type"], entry["provenance"], quality=q, config=entry.get("config"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=48)
    ap.add_argument("--seed", type=int, default=999)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--note", default="", help="a line about the training run for the results file")
    ap.add_argument("--prefix", default="", help="measure weights named PREFIX + mask_guided_* (a trial run)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = {k: args.prefix + v for k, v in NAMES.items()}
    res = measure(args.count, args.seed, names=names)
    print(json.dumps(res, indent=1))
    if args.record:
        record(res, args.note)


if __name__ == "__main__":
    main()
