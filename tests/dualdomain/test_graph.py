"""The dualdomain nodes wired through the engine: two random 32 px StyleGAN2 generators sharing z,
one segmenter on both feature stacks, the crossover and a 2-step D2 pass (port types, wiring);
the shipped graphs/dual_domain.json cut to 2 steps per pass."""

from __future__ import annotations

import json

import torch

import nodegraph
from nodegraph.graph import load_graph
from nodegraph.weights import PROJECT_ROOT, read_manifest

ARCH = {"size": 32, "style_dim": 32, "n_mlp": 2, "channel_multiplier": 1, "channel_max": 16}
C = 16 * 7  # seven feature maps of 16 channels at 32 px


def test_dual_domain_pipeline_runs(tmp_path):
    nodes = {
        "z": {"type": "stylegan.SampleZ", "params": {"batch": 1, "seed": 0, "dim": 32}},
        "g1": {"type": "stylegan.Generator", "params": {**ARCH, "seed": 1, "truncation": 0.7},
               "inputs": {"z": "z.z"}},
        "g2": {"type": "stylegan.Generator", "params": {**ARCH, "seed": 2}, "inputs": {"z": "z.z"}},
        "seg_s": {"type": "dualdomain.PartSegmenter", "params": {"in_channels": C},
                  "inputs": {"features": "g1.features"}},
        "seg_t": {"type": "dualdomain.PartSegmenter", "params": {"in_channels": C},
                  "inputs": {"features": "g2.features"}},
        "xover": {"type": "dualdomain.Crossover", "params": {"direction": "B"},
                  "inputs": {"source": "g1.image", "source_mask": "seg_s.mask", "target": "g2.image",
                             "target_mask": "seg_t.mask"}},
        "opt": {"type": "dualdomain.LatentOptimize",
                "params": {"pass_name": "D2", "iterations": 2, "every": 1, "n_mean": 100, "perceptual_size": 32,
                           "style_dim": 32},
                "inputs": {"generator": "g1.model", "target_generator": "g2.model", "source": "g1.image",
                           "source_mask": "seg_s.mask", "target": "g2.image", "target_mask": "seg_t.mask"}},
    }
    path = tmp_path / "dds.json"

    path.write_text(json.dumps({"nodegraph": 1, "name": "dds_test", "nodes": nodes}))
    out = nodegraph.run(load_graph(path))
    assert out["opt"]["image"].shape == (1, 3, 32, 32) and out["opt"]["loss"].shape == (2,)
    assert out["seg_s"]["mask"].shape == (1, 1, 32, 32)
    assert (out["opt"]["crossover"] - out["xover"]["image"]).abs().max() < 1e-5


def test_shipped_dual_domain_graph_runs_two_steps_per_pass():
    """Until the target generator / segmenter weights are shipped (tests/test_graphs.py
    PENDING_WEIGHTS) the graph runs with stand-ins: G_t = the source weights, a random segmenter."""
    manifest = read_manifest()
    tiny = {f"{p}.{k}": v for p in ("d1", "d2") for k, v in
            {"iterations": 2, "every": 1, "n_mean": 100, "perceptual_size": 64}.items()}
    if "stylegan2_faces64_sketch" not in manifest:
        tiny["gen_t.weights"] = "stylegan2_faces64"
    if "dds_segmenter_faces64_enm" not in manifest:
        tiny.update({"seg_s.weights": "", "seg_t.weights": ""})
    out = nodegraph.run(PROJECT_ROOT / "graphs" / "dual_domain.json", tiny, outputs=["sheet"])
    assert out["d1"]["loss"].shape == (2,) and out["d2"]["snapshots"].shape == (2, 1, 10, 512)
    assert torch.isfinite(out["d1"]["image"]).all() and torch.isfinite(out["d2"]["terms"]).all()
    assert (out["d2"]["crossover"] - out["xover_b"]["image"]).abs().max() < 1e-5
    assert out["sheet"]["image"].shape[1] == 3
