"""FD-Lite0 of every shipped generator against its own procedural data, with bounds.

    python benchmarks/features_fd.py [--n 500] [--record]

FD-Lite0 is the Fréchet distance between EfficientNet-Lite0 pooled features (224 px) of two
image sets (``nodes.features.frechet``); it is not FID and not comparable to papers' FIDs. Per
family, every set has ``n`` images and every figure is against the same reference set R (real
procedural pictures of a seed no generator was trained on):

- ``real``: real pictures of a second, disjoint seed vs R -- the floor (sampling noise at n);
- ``trained``: the shipped generator, conditioned on the second seed's labels, vs R;
- ``untrained``: the same architecture at random init on the same labels vs R -- the ceiling.

``--candidate NAME=FILE`` adds a landscape generator that is not shipped yet (a run's export).

Families: landscapes (``spade_landscape``, ``spade_landscape_vae``; data.Landscapes 128 px, R =
seed 3, labels seed 1), portraits (``mask_guided_*``: source face i rendered on the mask and
background of face i+1; data.Portraits 128 px, R = seed 1001, faces seed 999), toy shapes
(``tiny_cgan_G``; toy.Shapes 32 px, R = seed 98, labels seed 99). Small n biases FD upwards
(n < 1280 dims): compare figures at the same n only. KID (unbiased, cubic kernel; 50 subsets of
n/2) is reported beside it. ``--record`` writes the table to benchmarks/RESULTS.md (between
markers) and ``quality.fd_lite0`` into the manifest entries.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nodegraph import weights as W  # noqa: E402
from nodes.features.frechet import FeatureStats, extractor  # noqa: E402

BATCH = 25
BEGIN, END = "<!-- features_fd:begin -->", "<!-- features_fd:end -->"


def in_batches(n: int, make: Callable[[int, int], torch.Tensor]) -> list[torch.Tensor]:
    return [make(s, min(s + BATCH, n)) for s in range(0, n, BATCH)]


def landscapes(n: int) -> dict[str, list[torch.Tensor]]:
    from nodes.data.landscapes import make_landscape
    from nodes.spade.nodes import Generator

    def data(seed: int, key: str) -> Callable[[int, int], torch.Tensor]:
        return lambda a, b: torch.stack([make_landscape(i, seed, 128)[key] for i in range(a, b)])

    def gen(weights: str, params: dict) -> Callable[[int, int], torch.Tensor]:
        node = Generator({**params, "weights": weights})
        node.ctx.emit = lambda *a, **k: None
        torch.manual_seed(0)
        return lambda a, b: node(labels=data(1, "labels")(a, b))["image"]

    cfg = {k: v for k, v in W.read_manifest()["spade_landscape"]["config"]["params"].items() if k != "weights"}
    cfg_vae = {k: v for k, v in W.read_manifest()["spade_landscape_vae"]["config"]["params"].items() if k != "weights"}
    return {"reference": in_batches(n, data(3, "image")), "real": in_batches(n, data(1, "image")),
            "spade_landscape": in_batches(n, gen("spade_landscape", cfg)),
            "spade_landscape_vae": in_batches(n, gen("spade_landscape_vae", cfg_vae)),
            "untrained": in_batches(n, gen("", cfg)),
            **{name: in_batches(n, gen(path, cfg)) for name, path in CANDIDATES.items()}}


def portraits(n: int) -> dict[str, list[torch.Tensor]]:
    from benchmarks.portrait_quality import load_framework
    from nodes.data.portraits import ProceduralPortraits
    from nodes.portrait.model import Batch, MaskGuidedFramework

    def data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        ds = ProceduralPortraits(n, 128, seed=seed)
        items = [ds[i] for i in range(n)]
        return torch.stack([it["image"] for it in items]), torch.stack([it["labels"] for it in items])

    ref, _ = data(1001)
    img, lab = data(999)
    trained = load_framework()
    torch.manual_seed(0)
    untrained = MaskGuidedFramework(trained.cfg).eval()

    def mask_to_face(model: MaskGuidedFramework) -> Callable[[int, int], torch.Tensor]:
        def run(a: int, b: int) -> torch.Tensor:
            src = Batch.of(img[a:b], lab[a:b])
            _, codes, _ = model.encode(src)
            return ((model.render(codes, src.roll(-1)) + 1) / 2).clamp(0, 1)
        return run

    return {"reference": list(ref.split(BATCH)), "real": list(img.split(BATCH)),
            "mask_guided": in_batches(n, mask_to_face(trained)), "untrained": in_batches(n, mask_to_face(untrained))}


def toy(n: int) -> dict[str, list[torch.Tensor]]:
    from nodes.common.toy import Generator, make_shapes

    def data(seed: int, key: str) -> Callable[[int, int], torch.Tensor]:
        return lambda a, b: torch.stack([make_shapes(i, seed, 32)[key] for i in range(a, b)])

    def gen(weights: str) -> Callable[[int, int], torch.Tensor]:
        torch.manual_seed(0)
        node = Generator({"weights": weights})
        return lambda a, b: node(labels=data(99, "labels")(a, b))["image"]

    return {"reference": in_batches(n, data(98, "image")), "real": in_batches(n, data(99, "image")),
            "tiny_cgan_G": in_batches(n, gen("tiny_cgan_G")), "untrained": in_batches(n, gen(""))}


CANDIDATES: dict[str, str] = {}  # --candidate NAME=FILE: extra landscape generators (same architecture)
FAMILIES = {"landscapes": landscapes, "portraits": portraits, "toy": toy}
MANIFEST_KEYS = {"spade_landscape": ["spade_landscape"], "spade_landscape_vae": ["spade_landscape_vae"],
                 "mask_guided": ["mask_guided_generator", "mask_guided_local", "mask_guided_mask_encoder",
                                 "mask_guided_background", "mask_guided_fusion"],
                 "tiny_cgan_G": ["tiny_cgan_G"]}


@torch.no_grad()
def measure(n: int, families: list[str], partial: Path | None = None) -> dict[str, dict[str, dict[str, float]]]:
    ext = extractor("effnet_lite0")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for fam in families:
        t0 = time.perf_counter()
        sets = FAMILIES[fam](n)
        t_gen = time.perf_counter() - t0
        stats = {}
        for name, batches in sets.items():
            st = FeatureStats("effnet_lite0", keep=n)
            for b in batches:
                st.update(ext(b.float()))
            stats[name] = st
        ref = stats.pop("reference")
        out[fam] = {}
        for name, st in stats.items():
            k_mean, k_std = st.kid(ref, subsets=50, subset_size=n // 2)
            out[fam][name] = {"fd_lite0": round(st.frechet(ref), 2), "kid": round(k_mean, 5),
                              "kid_std": round(k_std, 5)}
        out[fam]["_seconds"] = {"generate": round(t_gen, 1), "total": round(time.perf_counter() - t0, 1)}
        print(fam, json.dumps(out[fam]), flush=True)
        if partial is not None:  # families measured so far, for --from-json if the run is cut short
            partial.write_text(json.dumps(out, indent=1))
    return out


def table(res: dict, n: int) -> str:
    lines = [BEGIN, "## FD-Lite0 of the shipped generators", "",
             f"`python benchmarks/features_fd.py --n {n} --record`: {n} generated vs {n} real images per figure "
             "(EfficientNet-Lite0 pooled features at 224 px; **FD-Lite0 is not FID**, and with n below the "
             "1280 feature dimensions it carries a large small-sample bias, so compare rows at the same n "
             "only). Each row is against the same reference set R of real procedural pictures (a seed no "
             "generator trained on); `real` = a second disjoint real set (the floor), `untrained` = the "
             "same architecture at random init on the same labels (the ceiling). KID: unbiased, cubic "
             "kernel, 50 subsets of n/2, x 1000. CPU, shared 2-core machine.", "",
             "| family | set | FD-Lite0 | KID x 1000 |", "|---|---|---|---|"]
    for fam, rows in res.items():
        for name, r in rows.items():
            if not name.startswith("_"):
                kid = f"{1000 * r['kid']:.2f} ± {1000 * r['kid_std']:.2f}"
                lines.append(f"| {fam} | {name} | {r['fd_lite0']:.1f} | {kid} |")
    return "\n".join(lines + ["", END])


def record(res: dict, n: int, path: Path = ROOT / "benchmarks" / "RESULTS.md",
           mpath: Path = ROOT / "weights" / "manifest.json") -> None:
    """The table into ``path`` (replacing an earlier one between the markers) and the figures into
    the manifest entries' ``quality.fd_lite0`` (read, modified and written back at once)."""
    text = path.read_text()
    block = table(res, n)
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
    manifest = json.loads(mpath.read_text())
    for fam, rows in res.items():
        for name, keys in MANIFEST_KEYS.items():
            if name not in rows:
                continue
            fig = {"value": rows[name]["fd_lite0"], "kid": rows[name]["kid"], "n": n,
                   "real_vs_real": rows["real"]["fd_lite0"], "untrained": rows["untrained"]["fd_lite0"],
                   "family": fam, "command": f"python benchmarks/features_fd.py --n {n} --record",
                   "note": "EfficientNet-Lite0 pooled features at 224 px; not FID; compare at the same n only"}
            for k in keys:
                manifest["weights"][k].setdefault("quality", {})["fd_lite0"] = fig
    W.write_json_atomic(manifest, mpath)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--json", default="", help="write the figures here (after each family)")
    ap.add_argument("--from-json", default="", help="record figures measured earlier instead of measuring")
    ap.add_argument("--candidate", action="append", default=[], metavar="NAME=FILE",
                    help="also measure this SPADE landscape weights file (spade_landscape's architecture), "
                         "e.g. a training run's export before it is copied into weights/")
    a = ap.parse_args()
    CANDIDATES.update(c.split("=", 1) for c in a.candidate)
    if a.from_json:
        res = json.loads(Path(a.from_json).read_text())
    else:
        res = measure(a.n, a.families.split(","), Path(a.json) if a.json else None)
    if a.record:
        record(res, a.n)


if __name__ == "__main__":
    main()
