"""Offline ImageNet features (issue 12): EfficientNet-Lite0 from its PyPI package, perceptual-loss
backbones, Fréchet distance / KID, and pytorch-fid's FID Inception-v3.

Modules: ``net`` (EfficientNet-Lite0, ``Lite0Features``), ``nodes`` (``features.EfficientNetLite0``),
``backbones`` (``loss.Perceptual``'s built-in networks, VGG16, the masked layer distance),
``frechet`` (streaming statistics, FD, KID), ``metrics`` (``metric.FrechetDistance``, registered
in the ``metric`` family through the entry point ``metric.features``), ``inception`` (FID
Inception-v3), ``convert`` (``nodegraph convert inception`` / ``vgg16``).

Python API (stable; other families use it)::

    from nodes.features.net import Lite0Features, load_pretrained
    feats = Lite0Features(load_pretrained())      # [0,1] images -> [s2, s4, s8, s16, s32] maps
    feats.pooled(images)                          # B x 1280, after a 224 x 224 resize

    from nodes.features.frechet import fd_lite0, FeatureStats, extractor, stats_of
    fd_lite0(images_a, images_b)                  # float; report it as "FD-Lite0", never "FID"
    ext = extractor("effnet_lite0")               # or extractor("inception", weights="fid_inception")
    ref = stats_of(batches, ext, keep=500)        # streaming; keep: rows held back for KID
    ref.save("ref.safetensors"); ref = FeatureStats.load("ref.safetensors")
    stats_of(fake_batches, ext, keep=500).frechet(ref)

    from nodes.common.losses import PerceptualLoss
    PerceptualLoss({"backbone": "effnet_lite0"})(a=fake, b=real)["loss"]   # or the graph node
"""
