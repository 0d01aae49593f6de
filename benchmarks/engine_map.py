"""Mapping a graph over many label maps (issue 14): graphs/spade_pis.json with ``--over``.

Measured in one process, interleaved (the machine is shared; each figure is the best of
``--rounds``):

1. overhead: ``nodegraph.map`` (batch 1) vs a hand-written loop calling the same node objects'
   ``forward`` (the style photo loaded once, every network set up once) -- target <= 3 %;
2. shared-prefix caching: ``nodegraph.map`` vs a loop of ``nodegraph.run`` per item (no cache:
   the style photo is read and every network set up for each item);
3. batching: the SPADE stage (labels -> spade -> resize -> save) with ``batch=8`` vs ``batch=1``.

    python benchmarks/engine_map.py                 # 200 maps, 64 px, GuidedSmooth, markdown table
    python benchmarks/engine_map.py --n 40 --size 128 --spade-size 128 --pis-size 256 --smooth pis.AffinitySmooth

Defaults are sized for a shared 2-core machine: label maps, generator and PIS at 64 px (the
generator's training size is 128, the graph's PIS size 256) and ``pis.GuidedSmooth`` (the
closed-form affinity smoothing costs seconds per picture on 2 cores). Smaller work per item makes
the engine's share larger, so the overhead figure is conservative.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image as PILImage

import nodegraph
from nodegraph.cache import Cache
from nodegraph.graph import load_graph
from nodegraph.mapper import MapJob

ROOT = Path(__file__).resolve().parent.parent


def write_maps(folder: Path, n: int, size: int) -> list[str]:
    from nodes.data.landscapes import write_example_label_map

    folder.mkdir(parents=True, exist_ok=True)
    return [str(write_example_label_map(folder / f"map_{i:04d}.png", i, seed=7, size=size)) for i in range(n)]


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds since ``t``: CPU time is what contention on a shared machine disturbs least."""
    return time.perf_counter() - t[0], time.process_time() - t[1]


def engine(g: Any, files: list[str], out: Path, batch: int = 1,
           outputs: list[str] | None = None, key: str = "labels.path") -> tuple[float, float]:
    t = clock()
    job = MapJob(g, [{key: f} for f in files], outputs=outputs, batch=batch, resume=False,
                 index=out / f"b{batch}.jsonl", lock=False, cache=Cache(enabled=False), device="cpu")
    for r in job.run():
        assert r.status == "ok", r.error
    return since(t)


def hand_loop(g: Any, files: list[str], out: Path) -> tuple[float, float]:
    """The same node types with the graph's params, called directly (forward), nothing else."""
    def make(nid: str, **extra: Any) -> nodegraph.Node:
        params = {**g.spec.nodes[nid].params, **extra}
        for k, v in list(params.items()):
            if k == "path":
                params[k] = g.resolve_path(v, "input")
        node = nodegraph.create(g.spec.nodes[nid].type, device="cpu", **params)
        node.ensure_setup()
        return node

    t = clock()
    spade, up, wct, smooth = (make(n) for n in ("spade", "up", "wct", "smooth"))
    with torch.inference_mode():
        style = make("style").forward()["image"]
        for f in files:
            labels = make("labels", path=f).forward()["labels"]
            x = up.forward(image=spade.forward(labels=labels)["image"])["image"]
            y = smooth.forward(stylized=wct.forward(content=x, style=style)["image"], content=x)["image"]
            stem = Path(f).stem
            nodegraph.create("io.SaveImage", path=str(out / "hand_c" / f"{stem}.png")).forward(image=x)
            nodegraph.create("io.SaveImage", path=str(out / "hand" / f"{stem}.png")).forward(image=y)
    return since(t)


def run_per_item(g: Any, files: list[str], out: Path) -> tuple[float, float]:
    t = clock()
    for f in files:
        stem = Path(f).stem
        nodegraph.run(g, overrides={"labels.path": f, "save.path": str(out / "naive" / f"{stem}.png"),
                                    "save_spade.path": str(out / "naive_c" / f"{stem}.png")},
                      device="cpu", cache=Cache(enabled=False))
    return since(t)


def fixed_cost(tmp: Path, n: int = 200, rounds: int = 3) -> tuple[float, float]:
    """CPU ms per item of map vs hand on a chain of tiny work (load 16 px, resize, save): the
    engine's fixed cost per item (pre-check, per-item params, events, output hashes, index line)."""
    import numpy as np

    d = tmp / "tiny"
    d.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        files.append(str(d / f"t{i:04d}.png"))
        PILImage.fromarray((np.random.RandomState(i).rand(16, 16, 3) * 255).astype(np.uint8)).save(files[-1])
    raw = {"nodegraph": 1, "name": "tiny", "nodes": {
        "img": {"type": "io.LoadImage", "params": {"path": ""}},
        "r": {"type": "image.Resize", "params": {"size": 8}, "inputs": {"image": "img.image"}},
        "save": {"type": "io.SaveImage", "params": {"path": "out/t.png"}, "inputs": {"image": "r.image"}}}}
    from nodegraph.graph import graph_from_dict

    g = graph_from_dict(raw, base_dir=tmp / "tiny_engine")

    def by_hand() -> tuple[float, float]:
        t = clock()
        r = nodegraph.create("image.Resize", size=8)
        with torch.inference_mode():
            for f in files:
                x = r.forward(image=nodegraph.create("io.LoadImage", path=f).forward()["image"])["image"]
                nodegraph.create("io.SaveImage", path=str(tmp / "tiny_hand" / Path(f).name)).forward(image=x)
        return since(t)

    eng, hand = [], []
    for _ in range(rounds):
        eng.append(engine(g, files, tmp, key="img.path")[1])
        hand.append(by_hand()[1])
    return 1e3 * min(eng) / n, 1e3 * min(hand) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=64, help="label map side (px)")
    ap.add_argument("--spade-size", type=int, default=64, help="spade.size (its training size is 128)")
    ap.add_argument("--pis-size", type=int, default=64, help="up.size: where PIS runs")
    ap.add_argument("--smooth", default="pis.GuidedSmooth")
    ap.add_argument("--naive", type=int, default=20, help="items for the nodegraph.run-per-item loop")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp(prefix="engine_map_"))
    files = write_maps(tmp / "labels", a.n, a.size)
    style = tmp / "style.png"  # the style photo at the PIS size (PhotoWCT encodes it for every item)
    PILImage.open(ROOT / "examples" / "style_warm.jpg").convert("RGB").resize((a.pis_size, a.pis_size)).save(style)
    g = load_graph(ROOT / "graphs" / "spade_pis.json").with_overrides(
        {"spade.size": a.spade_size, "up.size": a.pis_size, "smooth": a.smooth, "style.path": str(style)})
    g.out_dir = tmp / "engine"
    engine(g, files[:2], tmp / "warm")  # first-use costs (imports, kernels, file cache) out of the figures
    hand_loop(g, files[:2], tmp / "warm")
    eng, hand = [], []
    for _ in range(a.rounds):
        eng.append(engine(g, files, tmp))
        hand.append(hand_loop(g, files, tmp))
    naive = run_per_item(g, files[:a.naive], tmp)
    b1 = engine(g, files, tmp, 1, ["save_spade"])
    b8 = engine(g, files, tmp, 8, ["save_spade"])
    fe, fh = fixed_cost(tmp)
    n = a.n
    (e, ec), (h, hc) = min(eng), min(hand)

    def ms(x: tuple[float, float], k: int) -> str:
        return f"{1e3 * x[0] / k:.0f} ms wall, {1e3 * x[1] / k:.0f} ms CPU per item"

    rows = [
        ("items", f"{n} label maps {a.size} px; SPADE at {a.spade_size}, PIS at {a.pis_size} px (style photo "
                  f"too); smoothing {a.smooth}; {a.threads} threads"),
        ("nodegraph.map, batch 1", ms((e, ec), n) + f" (rounds: {', '.join(f'{x[0]:.1f}' for x in eng)} s)"),
        ("hand-written loop, same nodes", ms((h, hc), n) + f" (rounds: {', '.join(f'{x[0]:.1f}' for x in hand)} s)"),
        ("engine overhead", f"{100 * (ec / hc - 1):+.1f} % CPU, {100 * (e / h - 1):+.1f} % wall "
                            f"({1e3 * (ec - hc) / n:+.1f} ms CPU per item)"),
        (f"nodegraph.run per item (first {a.naive})", ms(naive, a.naive) + f" -> shared prefix "
                                                        f"{naive[1] / a.naive / (ec / n):.2f}x less CPU"),
        ("fixed cost per item (200 x load 16 px / resize / save)", f"map {fe:.2f} ms CPU, hand {fh:.2f} ms CPU: "
                                                                   f"{fe - fh:+.2f} ms per item"),
        ("SPADE stage, batch 1", ms(b1, n)),
        ("SPADE stage, batch 8", ms(b8, n) + f" -> {b1[1] / b8[1]:.2f}x less CPU, {b1[0] / b8[0]:.2f}x wall"),
    ]
    print("| measure | result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\n(files under {tmp})")


if __name__ == "__main__":
    main()
