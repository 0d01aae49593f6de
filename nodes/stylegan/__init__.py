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

CPU default: preset ``cpu64`` = ``StyleGANConfig(size=64, style_dim=512, n_mlp=8,
channel_multiplier=1, channel_max=128)`` (128 channels at every resolution 4..64, 10 W+ codes,
4.35 M generator parameters). The shipped sample weights are named ``stylegan2_faces64``
(trained by ``graphs/stylegan2_train.json`` on ``data.Portraits``).
"""
