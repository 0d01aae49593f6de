"""Photorealistic image stylization (Li et al., ECCV 2018; NVIDIA/FastPhotoStyle): ``photowct.py``
the PhotoWCT network, ``smoothing.py`` + ``multigrid.py`` the closed-form affinity smoothing and its
solver, ``nodes.py`` the ``pis.*`` nodes, ``train.py`` the decoder training script, ``convert.py``
the converter for official checkpoints (``nodegraph convert photowct``)."""
