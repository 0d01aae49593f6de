"""Face parsing and component geometry nodes (family ``face``).

- ``face.ComponentCrop`` — the local-embedding inputs of mask-guided portrait editing (Gu et al.
  2019): eyes 32 x 48 and mouth 80 x 144 at 256, skin and hair as masked full images, centres
  from the mask (geometry in :mod:`nodes.faceparse_geometry`).
- ``face.UNetParser`` — the parsing network P_F (pix2pix U-Net), trained by our graphs.
- ``face.BiSeNetParser`` — face-parsing.PyTorch's BiSeNet (19 classes) mapped to 11 labels,
  from a checkpoint converted with ``nodegraph convert bisenet 79999_iter.pth OUT.safetensors``.
- ``face.LandmarkParser`` — real photos, offline, via MediaPipe's bundled face mesh and selfie
  segmentation (optional extra ``nodegraph[faces]``).
"""

from __future__ import annotations

from pydantic import Field

import nodes.labelsets  # noqa: F401  (registers celebamask11)
from nodegraph.node import Node, NodeError, Params
from nodegraph.registry import register
from nodegraph.types import Image, LabelMap, Tensor

from .faceparse_geometry import COMPONENTS, component_centres, crop_components, expand_parts


@register("face.ComponentCrop")
class ComponentCrop(Node):
    """Crops of the five local components x_i^s (l_eye, r_eye, mouth, skin, hair) and centres c_i.

    Centres (N x 5 x 2, (y, x)) are bounding-box midpoints of labels 4, 5 and {7, 8, 9} with the
    official fallbacks, clamped so every crop lies inside the image; skin and hair are the
    whole image (centre = image centre). ``expand`` also outputs the generator's input mask with
    eyes and mouth enlarged 1.1x about their centres (official "append_region"); ``labels`` is
    the input map otherwise. ``eye_only`` masks the eye crops by their own label (the thesis's
    variant, sec. 4.5.1: no skin in the eye embedding). Masked-out pixels take ``fill``
    (0.5 = 0 in the official [-1, 1] space).
    """

    version = "1"

    class Params(Params):
        expand: bool = Field(False, description="enlarge eyes and mouth 1.1x in the output mask")
        expand_factor: float = Field(1.1, ge=1.0, le=1.5, description="enlargement when expand is on")
        eye_only: bool = Field(False, description="mask the eye crops by the eye labels (thesis variant)")
        mask_mouth: bool = Field(True, description="multiply the mouth crop by the lips+mouth mask (official)")
        fill: float = Field(0.5, ge=0, le=1, description="value of masked-out pixels")

    inputs = {"image": Image(), "labels": LabelMap("celebamask11")}
    outputs = {
        **{c: Image(doc=f"{c} crop") for c in COMPONENTS},
        "centres": Tensor(rank=3, doc="N x 5 x 2 (y, x) centres in l_eye, r_eye, mouth, skin, hair order"),
        "labels": LabelMap("celebamask11", doc="mask for the generator (expanded if expand)"),
    }

    def forward(self, image, labels):
        if image.shape[-2:] != labels.shape[-2:] or image.shape[0] != labels.shape[0]:
            raise NodeError(f"image {tuple(image.shape)} and labels {tuple(labels.shape)} must have the "
                            "same batch size and height x width", self.type_name, "inputs")
        p = self.params
        centres = component_centres(labels).to(image.device)
        crops = crop_components(image, labels, centres, mask_eyes=p.eye_only, mask_mouth=p.mask_mouth,
                                fill=p.fill)
        out_labels = expand_parts(labels, centres, p.expand_factor) if p.expand else labels
        return {**crops, "centres": centres, "labels": out_labels}
