"""Mask-guided portrait editing (Gu et al., CVPR 2019): ``net.py`` + ``blocks.py`` the networks
(E_local/D_local, E_m, G_m, E_b/G_b, discriminators), ``losses.py``, ``model.py`` (the framework in
Python), ``edit.py`` the editing applications, ``nodes.py`` the ``portrait.*`` nodes."""
