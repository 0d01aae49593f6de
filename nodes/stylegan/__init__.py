"""StyleGAN2 family (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN",
CVPR 2020), in rosinality/stylegan2-pytorch's module layout so official checkpoints convert by
an identity key map.

- ``ops.py``: pure-PyTorch upfirdn2d / blur / fused leaky ReLU;
- ``net.py``: ``StyleGANConfig`` + ``PRESETS``, the building blocks and ``Generator``
  (mapping, truncate, to_wplus, synthesis -> image + per-layer features);
- ``discriminator.py``: the residual D with minibatch stddev;
- ``load.py``: config resolution (file metadata ``config`` / manifest / shapes) and strict loading;
- ``nodes.py``: ``stylegan.SampleZ``, ``Mapping``, ``Truncate``, ``Synthesis``, ``Generator``,
  ``Discriminator``;
- ``convert.py``: ``nodegraph convert stylegan2 CKPT OUT.safetensors``.

Training (graphs/stylegan2_train.json, issue 11b) uses: ``stylegan.SampleZ`` (in training a
fresh draw from the trainer's RNG each step; wire ``like`` to the data batch for its size);
``stylegan.Generator`` with ``z`` + ``z2`` and ``mix_prob: 0.9`` (official mixing: with that
probability the W+ switches to z2 at a random index 1..n_latent-1, else z alone); its ``image``
is unclamped in training (D sees the raw output, as officially); its ``wplus`` output is the
tensor synthesis reads, so the path-length regulariser can take ``autograd.grad`` with respect to
it; with ``z`` input the generator's ``latent_avg`` buffer tracks the running w_avg (beta
0.995), so exported weights carry the truncation centre. ``stylegan.Discriminator`` judges fake
and real in two passes (minibatch stddev must not mix them) and returns B x 1 logits.

CPU default: preset ``cpu64`` = ``StyleGANConfig(size=64, style_dim=512, n_mlp=8,
channel_multiplier=1, channel_max=32)`` (32 channels at every resolution 4..64, 10 W+ codes), the
width graphs/stylegan2_train.json trains on one CPU core; its export is ``stylegan2_faces64``.
"""
