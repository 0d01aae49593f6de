"""Distribution metrics over ImageNet features, registered in the ``metric`` family (entry point
``metric.features``): ``metric.FrechetDistance`` (FD-Lite0 or FID, plus KID)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from nodegraph.node import InputFile, Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Image, Scalar

from .frechet import FEATURES, Extractor, FeatureStats, extractor

DEFAULT_INCEPTION = "fid_inception"


@register("metric.FrechetDistance")
class FrechetDistance(Node):
    """Fréchet distance between two image sets' feature Gaussians (Heusel et al. 2017, eq. 6):
    ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)); lower is better.

    Each side is an image batch (``a`` / ``b``: N x 3 x H x W in [0, 1], N >= 2) or a statistics
    file (``a_stats`` / ``b_stats``, written by ``nodes.features.frechet.FeatureStats.save``).
    ``features``: ``effnet_lite0`` -- EfficientNet-Lite0's pooled 1280-d head at 224 px, exactly
    ``features.EfficientNetLite0``'s ``pooled``; report the figure as **FD-Lite0**, never as FID --
    or ``inception`` -- pytorch-fid's FID Inception-v3 (2048-d at 299 px; the figure is FID,
    comparable to papers), from ``nodegraph convert inception pt_inception-2015-12-05-6726825d.pth
    weights/fid_inception.safetensors``. ``kid``: the unbiased KID (cubic polynomial kernel) when
    both sides have features (images, or a stats file saved with kept features), else NaN.
    Small sets bias FD upwards (rank-deficient covariances below ~d samples): compare figures
    computed at the same N only.
    """

    version = "1"

    class Params(Params):
        features: Literal["effnet_lite0", "inception"] = Field(
            "effnet_lite0", description="effnet_lite0: FD-Lite0 (offline, not FID); inception: FID")
        weights: WeightsRef = Field("", description="inception only: the converted FID Inception "
                                                    f"(empty: {DEFAULT_INCEPTION!r} from the manifest)")
        a_stats: InputFile = Field("", description="statistics file for side a instead of images")
        b_stats: InputFile = Field("", description="statistics file for side b instead of images")
        kid_subsets: int = Field(100, ge=1, le=1000, description="KID: number of random subsets")
        kid_subset_size: int = Field(1000, ge=2, description="KID: rows per subset (capped at the set sizes)")

    inputs = {"a": Image(optional=True), "b": Image(optional=True)}
    outputs = {"value": Scalar(), "kid": Scalar(), "kid_std": Scalar()}

    def setup(self) -> None:
        self._ext: Extractor | None = None

    def _extractor(self) -> Extractor:
        if self._ext is None:
            p = self.params
            try:
                self._ext = extractor(p.features, p.weights or DEFAULT_INCEPTION, self.device, self.ctx.base_dir)
            except (FileNotFoundError, KeyError, ValueError) as e:
                hint = (" (convert pytorch-fid's file once: nodegraph convert inception "
                        "pt_inception-2015-12-05-6726825d.pth weights/fid_inception.safetensors)"
                        if p.features == "inception" else "")
                raise NodeError(f"{e}{hint}", self.ctx.node_id or self.type_name, "params.weights") from None
        return self._ext

    def _side(self, name: str, images: torch.Tensor | None, path: str) -> FeatureStats:
        who = self.ctx.node_id or self.type_name
        if (images is None) == (not path):
            raise NodeError(f"side {name}: give either the '{name}' input (images) or params.{name}_stats "
                            f"(a statistics file), not {'both' if path else 'neither'}", who, name)
        if path:
            try:
                st = FeatureStats.load(path)
            except (ValueError, OSError) as e:
                raise NodeError(str(e), who, f"params.{name}_stats") from None
            if st.features != self.params.features:
                raise NodeError(f"{path} holds {st.features!r} statistics, this node compares "
                                f"{self.params.features!r} features", who, f"params.{name}_stats")
            return st
        assert images is not None
        if images.shape[0] < 2:
            raise NodeError(f"side {name} has {images.shape[0]} image; a covariance needs at least 2", who, name)
        self.ctx.progress(0, 1, f"{FEATURES[self.params.features][0]} features of {name}")
        return FeatureStats(self.params.features, keep=images.shape[0]).update(self._extractor()(images))

    def forward(self, a: torch.Tensor | None = None, b: torch.Tensor | None = None) -> dict[str, Any]:
        sa = self._side("a", a, self.params.a_stats)
        sb = self._side("b", b, self.params.b_stats)
        value = sa.frechet(sb)
        kid_mean = kid_std = float("nan")
        if sa.kept and sb.kept:
            kid_mean, kid_std = sa.kid(sb, subsets=self.params.kid_subsets, subset_size=self.params.kid_subset_size)
        f64 = torch.float64
        return {"value": torch.tensor(value, dtype=f64), "kid": torch.tensor(kid_mean, dtype=f64),
                "kid_std": torch.tensor(kid_std, dtype=f64)}
