"""Face parsing: ``net.py`` (BiSeNet, our U-Net parser P_F), ``landmarks.py`` (MediaPipe parser),
``geometry.py`` (component boxes and crops), ``nodes.py`` the ``face.*`` nodes, ``convert.py`` the
converter for face-parsing.PyTorch's BiSeNet (``nodegraph convert bisenet``)."""
