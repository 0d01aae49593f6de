"""ImageNet feature backbones that work offline (issue 12): EfficientNet-Lite0 from its PyPI
package (``net``), the nodes (``nodes``), Fréchet distance / KID statistics (``frechet``).

Python API (stable; other families use it)::

    from nodes.features.net import load_pretrained, Lite0Features
    feats = Lite0Features(load_pretrained())      # [0,1] images -> list of taps s2..s32
    feats.pooled(images)                          # B x 1280 (resized to 224 x 224)
"""
