"""The dualdomain nodes wired through the engine: two random 32 px StyleGAN2 generators sharing z,
one segmenter on both feature stacks, the crossover and a 2-step D2 pass (port types, wiring)."""

from __future__ import annotations

import json

import nodegraph
from nodegraph.graph import load_graph

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
