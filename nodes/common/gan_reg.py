"""GAN regularisers that differentiate a network's output with respect to its input (family
``loss``): the R1 penalty on real data and StyleGAN2's path-length regulariser.

The penalty takes ``torch.autograd.grad(..., create_graph=True)`` inside ``forward``, so it can
itself be back-propagated into the discriminator. It differentiates with respect to a *data*
input: the ``image`` port is declared ``requires_grad=True``, which makes the training engine
hand this node, and the discriminator that reads the same batch, one leaf tensor that requires
grad (docs/training.md, "Gradients with respect to data").

Lazy regularisation (StyleGAN2 App. B) lives in the train section, not here: the objective
holding the penalty runs every k steps (``"every": k``) with loss weight k and shares the main
objective's optimizer (``"optimizer": "D"``), whose lr and betas carry ``"lazy_every": k``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field

from nodegraph.node import Node, NodeError, Params
from nodegraph.registry import register
from nodegraph.types import Any_, Image, Latent, Scalar, Tensor

from .losses import logits_per_scale


@register("loss.R1")
class R1Penalty(Node):
    """R1 gradient penalty on real data (Mescheder et al. 2018, eq. 9; StyleGAN2 sec. 4, App. B).

    R1 = gamma / 2 * E_x[ ||grad_x D(x)||_2^2 ]: the squared gradient norm is summed over the
    pixels of each image and averaged over the batch (rosinality ``train.py`` ``d_r1_loss``,
    weighted ``r1 / 2``). The gradient is taken on the official [-1, 1] scale: the ``image`` port
    carries x in [0, 1] and x' = 2x - 1, so grad_x' = grad_x / 2 and ``gamma`` means what it
    means in the papers (rosinality default 10). Multi-scale D outputs: the gradient of their sum.

    Inputs: ``real`` (D's output on ``image``: a B x 1 tensor or a list over scales) and
    ``image`` (B x 3 x H x W in [0, 1], the batch D read; declared ``requires_grad``).
    Outputs: ``loss`` (gamma/2 * E||grad_x'||^2) and ``penalty`` (E||grad_x'||^2, detached, for logs).
    Raises NodeError when ``real`` was not computed from ``image`` with autograd (e.g. outside
    ``nodegraph train`` with tensors that do not require grad).
    """

    version = "1"

    class Params(Params):
        gamma: float = Field(10.0, ge=0, description="R1 weight gamma: loss = gamma/2 * E||grad D||^2 "
                             "(rosinality default 10)")

    inputs = {"real": Any_(doc="D output on `image` (B x 1 logits, or a list over scales)"),
              "image": Image(requires_grad=True, doc="the real batch x in [0, 1] that D read")}
    outputs = {"loss": Scalar(), "penalty": Scalar()}

    def forward(self, real: Any, image: torch.Tensor) -> dict[str, torch.Tensor]:
        total = sum(x.float().sum() for x in logits_per_scale(real))
        if not (torch.is_grad_enabled() and image.requires_grad and isinstance(total, torch.Tensor)
                and total.requires_grad):
            raise self._no_graph()
        (grad,) = torch.autograd.grad(total, image, create_graph=True, allow_unused=True)
        if grad is None:
            raise self._no_graph()
        grad = grad.float() / 2  # d/dx' for x' = 2x - 1: the official [-1, 1] scale
        penalty = grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()
        return {"loss": self.params.gamma / 2 * penalty, "penalty": penalty.detach()}

    def _no_graph(self) -> NodeError:
        nid = self.ctx.node_id or self.type_name
        return NodeError(f"{nid}: input 'real' must be D's output computed from input 'image' with autograd "
                         "(R1 differentiates D(x) with respect to x). Under `nodegraph train` the engine "
                         "arranges it (the port is declared requires_grad); called directly, pass an image "
                         "that requires grad and D's output on that very tensor.", self.ctx.node_id or None,
                         f"{nid}.inputs.real")


@register("loss.PathLength")
class PathLengthPenalty(Node):
    """Path-length regularisation of a StyleGAN generator (Karras et al. 2020, StyleGAN2 sec. 3.2,
    eq. 4; rosinality ``train.py`` ``g_path_regularize``).

    With y ~ N(0, I) / sqrt(H W) (a fresh random image per call, from torch's global RNG, which
    the trainer seeds and checkpoints), the Jacobian-vector product J_w^T y = grad_w <g(w), y> is
    taken with respect to the W+ codes the generator used. Per sample,
    a_i = sqrt(mean over the n_latent layers of ||J^T y||^2 summed over the D code dims); the
    running target is a <- a + decay (mean_i a_i - a) (a starts at 0, so the first calls pull the
    lengths towards a small value, as the official code does); penalty = mean_i (a_i - a)^2 with
    the *updated* a, gradient flowing through both (as the official code computes it).
    ``loss = weight * penalty``; the lazy interval k is the objective's business (``"every": 4`` and
    loss weight 4 in the train section, rosinality ``g_reg_every``), like ``loss.R1``.

    The running mean a is state across steps: ``train_state`` hands it to the trainer's checkpoint
    so ``--resume`` continues bit-exactly.

    Inputs: ``raw`` (B x 3 x H x W, the generator's unclamped output on the [-1, 1] scale, its
    ``raw`` port) and ``wplus`` (B x n_latent x D, the codes that produced it, its ``wplus``
    port). Outputs: ``loss``, ``penalty`` (detached) and ``path_length`` (mean_i a_i, detached,
    for logs). Raises NodeError when ``raw`` was not computed from ``wplus`` with autograd.
    """

    version = "1"

    class Params(Params):
        weight: float = Field(2.0, ge=0, description="lambda_pl: loss = weight * penalty (rosinality "
                              "--path_regularize 2)")
        decay: float = Field(0.01, gt=0, le=1, description="running-mean rate of the target length a "
                             "(rosinality path_batch decay 0.01)")

    inputs = {"raw": Tensor(rank=4, doc="generator output g(w), B x 3 x H x W on the [-1, 1] scale"),
              "wplus": Latent("W+", doc="the B x n_latent x D codes g used (the generator's wplus port)")}
    outputs = {"loss": Scalar(), "penalty": Scalar(), "path_length": Scalar()}

    def setup(self) -> None:
        self.mean_length = torch.zeros((), dtype=torch.float32)

    def train_state(self) -> dict[str, torch.Tensor]:
        return {"mean_length": self.mean_length} if self._ready else {}

    def load_train_state(self, state: dict[str, torch.Tensor]) -> None:
        self.mean_length = state["mean_length"].clone().float()

    def forward(self, raw: torch.Tensor, wplus: torch.Tensor) -> dict[str, torch.Tensor]:
        if not (torch.is_grad_enabled() and raw.requires_grad and wplus.requires_grad):
            raise self._no_graph()
        y = torch.randn_like(raw) / math.sqrt(raw.shape[2] * raw.shape[3])
        (grad,) = torch.autograd.grad((raw * y).sum(), wplus, create_graph=True, allow_unused=True)
        if grad is None:
            raise self._no_graph()
        lengths = grad.float().pow(2).sum(2).mean(1).sqrt()
        prev = self.mean_length.to(lengths.device)
        target = prev + self.params.decay * (lengths.mean() - prev)
        penalty = (lengths - target).pow(2).mean()
        self.mean_length = target.detach().cpu()
        return {"loss": self.params.weight * penalty, "penalty": penalty.detach(),
                "path_length": lengths.mean().detach()}

    def _no_graph(self) -> NodeError:
        nid = self.ctx.node_id or self.type_name
        return NodeError(f"{nid}: input 'raw' must be the generator's output computed from input 'wplus' with "
                         "autograd (the penalty differentiates g(w) with respect to w). Wire gen.raw and "
                         "gen.wplus of the same stylegan.Generator inside an objective that updates it.",
                         self.ctx.node_id or None, f"{nid}.inputs.raw")
