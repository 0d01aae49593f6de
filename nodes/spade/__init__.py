"""SPADE (Park et al., CVPR 2019): ``net.py`` the networks, ``nodes.py`` the ``spade.*`` nodes,
``convert.py`` the converter for NVlabs/SPADE checkpoints (``nodegraph convert spade``)."""
