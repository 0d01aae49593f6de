"""``stylegan.GeneratorV1``: the StyleGAN v1 generator of In-Domain GAN Inversion (``v1.py``).

Weights: ``nodegraph convert idinvert-generator styleganinv_ffhq256_generator.pth OUT.safetensors``
(metadata ``config`` = ``StyleGANV1Config.to_json()``). Registered by ``nodes.stylegan.nodes``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from safetensors import safe_open

from nodegraph import weights as weights_mod
from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Image, Latent, Model, Tensor

from .v1 import GeneratorV1 as GeneratorV1Net
from .v1 import StyleGANV1Config

FAMILY_V1 = "stylegan1"


def read_config(ref: str, base_dir: Path | None = None) -> dict[str, Any]:
    """The ``config`` metadata of a converted v1 generator file ({} when absent)."""
    with safe_open(str(weights_mod.resolve(ref, base_dir)), "pt") as f:
        meta = f.metadata() or {}
    try:
        return json.loads(meta.get("config", "{}"))
    except json.JSONDecodeError:
        return {}


def load_v1(state: dict[str, torch.Tensor], cfg: StyleGANV1Config) -> GeneratorV1Net:
    """A GeneratorV1 with ``state`` loaded strictly (ValueError listing mismatched keys)."""
    net = GeneratorV1Net(cfg)
    parts = weights_mod.state_dict_mismatch(state, net.state_dict())
    if parts:
        raise ValueError(f"the weights do not fit a StyleGAN v1 generator with {cfg}: " + "; ".join(parts))
    net.load_state_dict(state)
    return net


@register("stylegan.GeneratorV1")
class GeneratorV1(Node):
    """StyleGAN v1 synthesis as IDInvert uses it (Zhu et al. ECCV 2020; genforce/idinvert_pytorch):
    W+ (B x n_latent x D, one code per layer; 256 px -> 14) -> image B x 3 x size x size in [0, 1]
    (tanh output mapped from [-1, 1]), fixed noise. Wire ``wplus`` or ``z`` (mapped to W+ by the
    per-layer mapping, then truncated with ``truncation`` on the first 8 layers, official 0.7).

    Errors (before any work): a code with the wrong number of layers names ``inputs.wplus``;
    weights that do not fit name ``params.weights``."""

    version = "1"

    class Params(Params):
        size: int | None = Field(None, ge=8, le=1024, description="output px; None = from the weights")
        fmaps_max: int = Field(512, ge=8, le=512, description="channel cap (512 = official; random init only)")
        truncation: float = Field(1.0, ge=-2.0, le=2.0, description="psi on layers 0..7 for z input "
                                  "(1 = none; official sampling 0.7)")
        weights: WeightsRef = Field("", description="converted generator (nodegraph convert idinvert-generator); "
                                    "empty = random init (seeded by `seed`)")
        seed: int = Field(0, description="seed of the random init")

    inputs = {"wplus": Latent("W+", optional=True, doc="B x n_latent x 512"),
              "z": Tensor(rank=2, optional=True, doc="B x 512 codes for the mapping")}
    outputs = {"image": Image(doc="G(w) in [0, 1]"),
               "raw": Tensor(rank=4, doc="tanh output on the official [-1, 1] scale"),
               "wplus": Latent("W+", doc="the codes used"),
               "model": Model(FAMILY_V1, doc="GeneratorV1 network: forward(W+) -> [-1, 1] image")}

    def _error(self, message: str, where: str) -> NodeError:
        nid = self.ctx.node_id or self.type_name
        return NodeError(f"node {nid!r} ({self.type_name}): {message}", nid, f"{nid}.{where}")

    def setup(self) -> None:
        p = self.params
        if not p.weights:
            if p.size is None:
                raise self._error("params.size is needed without weights (e.g. 256)", "params.size")
            with torch.random.fork_rng():  # seeded init without touching the caller's RNG
                torch.manual_seed(p.seed)
                self.net = GeneratorV1Net(StyleGANV1Config(p.size, fmaps_max=p.fmaps_max))
            self.ctx.warn(f"{self.type_name} has no weights: random init (set params.weights)")
        else:
            stored = read_config(p.weights, self.ctx.base_dir)
            if p.size is not None and stored.get("size", p.size) != p.size:
                raise self._error(f"params.size = {p.size} but the weights are a {stored['size']} px model",
                                  "params.size")
            cfg = StyleGANV1Config.from_json({"size": p.size or 256, **stored})
            try:
                self.net = load_v1(weights_mod.load(p.weights, self.ctx.base_dir), cfg)
            except ValueError as e:
                raise self._error(str(e), "params.weights") from None
        self.net.to(self.device).eval().requires_grad_(False)

    def forward(self, wplus: torch.Tensor | None = None, z: torch.Tensor | None = None) -> dict[str, Any]:
        net = self.net
        if (wplus is None) == (z is None):
            raise self._error("wire exactly one of wplus / z", "inputs")
        if wplus is not None and wplus.shape[1] != net.n_latent:
            raise self._error(f"input wplus has {wplus.shape[1]} layer codes; this {net.size} px generator takes "
                              f"{net.n_latent} (2 (log2 size - 1): 256 px -> 14)", "inputs.wplus")
        if z is not None:
            if z.shape[1] != net.cfg.z_dim:
                raise self._error(f"input z is B x {z.shape[1]}; the mapping takes B x {net.cfg.z_dim}", "inputs.z")
            wplus = net.mapping(z.to(self.device))
            if self.params.truncation != 1:
                wplus = net.truncate(wplus, self.params.truncation)
        raw = net(wplus.to(self.device))
        return {"image": ((raw + 1) / 2).clamp(0, 1), "raw": raw, "wplus": wplus, "model": net}
