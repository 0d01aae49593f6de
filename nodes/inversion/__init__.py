"""In-Domain GAN Inversion (Zhu, Shen, Zhao, Zhou, ECCV 2020; genforce/idinvert_pytorch).

- ``net.py``: the domain-guided encoder E (official PyTorch-port layout, width-configurable) and
  IDInvert's perceptual network (Keras-converted VGG16 to conv4_3, caffe preprocessing);
- ``optimize.py``: domain-regularised optimisation of W+ (loss, loop, timing-relevant choices);
- ``edit.py``: interpolation, manipulation, style mixing, stitching, boundary learning (tensor ops);
- ``boundary.py``: InterFaceGAN ``.npy`` boundaries read without running pickle;
- ``nodes.py``: ``inversion.Encoder``, ``Perceptual``, ``Optimize``, ``Interpolate``, ``Manipulate``,
  ``StyleMix``, ``Stitch``, ``LearnBoundary``;
- ``convert.py``: ``nodegraph convert idinvert-generator | idinvert-encoder | vgg16-idinvert |
  interfacegan-boundary``.

The StyleGAN v1 generator those checkpoints need is ``nodes.stylegan.v1`` (``stylegan.GeneratorV1``).
"""
