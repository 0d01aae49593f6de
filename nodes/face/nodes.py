"""Face parsing and component geometry nodes (family ``face``).

- ``face.ComponentCrop`` — the local-embedding inputs of mask-guided portrait editing (Gu et al.
  2019): eyes 32 x 48 and mouth 80 x 144 at 256, skin and hair as masked full images, centres
  from the mask (geometry in :mod:`nodes.face.geometry`).
- ``face.UNetParser`` — the parsing network P_F (pix2pix U-Net), trained by our graphs.
- ``face.BiSeNetParser`` — face-parsing.PyTorch's BiSeNet (19 classes) mapped to 11 labels,
  from a checkpoint converted with ``nodegraph convert bisenet 79999_iter.pth OUT.safetensors``.
- ``face.LandmarkParser`` — real photos, offline, via MediaPipe's bundled face mesh and selfie
  segmentation (optional extra ``nodegraph[faces]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

import nodes.common.labelsets  # noqa: F401  (registers celebamask11)
from nodegraph import weights as wmod
from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Image, LabelMap, Tensor
from nodes.data.celebamask import BISENET_ORDER, map19_to_11

from .geometry import COMPONENTS, component_centres, crop_components, expand_parts
from .landmarks import MediaPipeMissing, alignment, choose_faces
from .net import BiSeNet, UNetParserNet

UNET_DEFAULTS = {"ngf": 32, "depth": 6, "max_mult": 4, "norm": "batch"}


def load_unet_parser(ref: str = "face_parser_default", base_dir: Path | None = None) -> UNetParserNet:
    """The trained P_F as a plain module (eval mode), built from the manifest's recorded config.

    Call it on [0, 1] images; it returns 11-class logits. Other helpers (the portrait parsing
    loss) use this instead of the node.
    """
    cfg = dict(UNET_DEFAULTS)
    path = wmod.resolve(ref, base_dir)
    entry = wmod.read_manifest(path.parent).get(ref, {})
    recorded = entry.get("config") or {}
    recorded = recorded.get("params", recorded)  # the trainer nests the node's params
    cfg.update({k: v for k, v in recorded.items() if k in UNET_DEFAULTS})
    net = UNetParserNet(11, **cfg)
    wmod.load_into(net, ref, base_dir)
    return net.eval()


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


def _resize_in(image: torch.Tensor, size: int) -> torch.Tensor:
    if size and tuple(image.shape[-2:]) != (size, size):
        return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return image


@register("face.UNetParser")
class UNetParser(Node):
    """P_F: the face-parsing U-Net of mask-guided portrait editing -> ``celebamask11`` labels.

    Trained by ``graphs/face_parser_train.json`` (cross-entropy on logits); default weights
    ``face_parser_default`` (procedural portraits at 128 px). Images are resized to ``size`` for
    the network and the logits back to the input resolution.
    """

    version = "1"

    class Params(Params):
        weights: WeightsRef = Field("face_parser_default", description="trained P_F ('' = random init)")
        size: int = Field(128, ge=0, le=1024, description="work resolution (0 = the input's)")
        ngf: int = Field(UNET_DEFAULTS["ngf"], ge=4, le=128, description="channels of the first level")
        depth: int = Field(UNET_DEFAULTS["depth"], ge=2, le=8, description="down-sampling levels")
        max_mult: int = Field(UNET_DEFAULTS["max_mult"], ge=1, le=16, description="channel cap as a multiple of ngf")
        norm: Literal["batch", "instance"] = Field("batch", description="normalisation layer")

    inputs = {"image": Image()}
    outputs = {"labels": LabelMap("celebamask11"),
               "logits": Tensor(rank=4, doc="N x 11 x H x W class logits at the input resolution")}

    def setup(self) -> None:
        p = self.params
        self.net = UNetParserNet(11, p.ngf, p.depth, p.max_mult, p.norm).to(self.device)
        if p.weights:
            wmod.load_into(self.net, p.weights, self.ctx.base_dir)
        self.net.train(self.ctx.training)

    def forward(self, image):
        h, w = image.shape[-2:]
        logits = self.net(_resize_in(image, self.params.size))
        if tuple(logits.shape[-2:]) != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return {"labels": logits.argmax(1), "logits": logits}


_TO19 = {name: i for i, name in enumerate(nodes.common.labelsets.CELEBAMASK19.names)}
BISENET_TO_CELEBAMASK19 = torch.tensor([_TO19[n] for n in BISENET_ORDER])


@register("face.BiSeNetParser")
class BiSeNetParser(Node):
    """BiSeNet face parser (face-parsing.PyTorch, 19 classes) mapped to ``celebamask11``.

    Weights: the official ``79999_iter.pth`` converted once with
    ``nodegraph convert bisenet 79999_iter.pth weights/bisenet_faces.safetensors``. Images are
    resized to ``size`` (512, as trained) and ImageNet-normalised; 19 -> 11 assigns left/right
    eyes and brows by x-centroid per image. ``labels19`` is the raw parse in ``celebamask19`` ids.
    """

    version = "1"

    class Params(Params):
        weights: WeightsRef = Field(..., description="converted BiSeNet checkpoint (name or .safetensors)")
        size: int = Field(512, ge=64, le=2048, description="network input resolution")

    inputs = {"image": Image()}
    outputs = {"labels": LabelMap("celebamask11"), "labels19": LabelMap("celebamask19"),
               "logits": Tensor(rank=4, doc="N x 19 x H x W logits, face-parsing.PyTorch class order")}

    def setup(self) -> None:
        self.net = BiSeNet(19).to(self.device).eval()
        if not self.params.weights:
            raise NodeError("face.BiSeNetParser needs converted weights: run `nodegraph convert bisenet "
                            "79999_iter.pth weights/bisenet_faces.safetensors` and set params.weights",
                            self.type_name, "params.weights")
        wmod.load_into(self.net, self.params.weights, self.ctx.base_dir)

    def forward(self, image):
        h, w = image.shape[-2:]
        logits = self.net(_resize_in(image, self.params.size))
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=True)
        raw = logits.argmax(1)
        out11 = np.stack([map19_to_11(r) for r in raw.cpu().numpy()])
        return {"labels": torch.from_numpy(out11).to(image.device),
                "labels19": BISENET_TO_CELEBAMASK19.to(raw.device)[raw], "logits": logits}


@register("face.LandmarkParser")
class LandmarkParser(Node):
    """11-label masks of real photos, offline, from MediaPipe's bundled face mesh + selfie segmentation.

    With ``align`` the photo is warped by a similarity putting the eyes and lips at the official
    canonical positions ((x, y) = (96, 116), (160, 116), (128, 184) at 256) and cropped to
    ``size``, the input the portrait networks expect; otherwise labels are in the photo's frame.
    Outputs the (aligned) image, its ``celebamask11`` mask, the component centres (N x 5 x 2,
    ``face.ComponentCrop`` convention) and the 478 face-mesh landmarks (N x 478 x 2, (x, y)).
    A photo with several faces: ``face`` picks the largest (default; a warning names which of how
    many), one by index counted from the left, or all of them (one output item per face).
    Needs the optional extra: ``pip install --no-deps mediapipe==0.10.21`` (see docs).
    """

    version = "1"
    cacheable = True

    class Params(Params):
        align: bool = Field(True, description="warp to the canonical aligned face crop")
        size: int = Field(256, ge=64, le=1024, description="side of the aligned output")
        face: Literal["largest", "all"] | Annotated[int, Field(ge=0)] = Field(
            "largest", description="which face of a photo with several: the largest, all (one output "
                                   "per face), or an index counted from the left")

    inputs = {"image": Image()}
    outputs = {"image": Image(), "labels": LabelMap("celebamask11"),
               "centres": Tensor(rank=3, doc="N x 5 x 2 (y, x) component centres"),
               "landmarks": Tensor(rank=3, doc="N x 478 x 2 (x, y) in output pixels")}

    def setup(self) -> None:
        from .landmarks import LandmarkFaceParser

        try:
            self.parser = LandmarkFaceParser()
        except MediaPipeMissing as e:
            raise NodeError(str(e), self.ctx.node_id or self.type_name, "setup") from None  # the engine names the node

    def _faces(self, i: int, rgb: np.ndarray) -> list[np.ndarray]:
        """The landmarks of the face(s) ``params.face`` picks in image ``i``, saying which when several."""
        who = self.ctx.node_id or self.type_name
        found = self.parser.faces(np.ascontiguousarray(rgb))
        if not found:
            raise NodeError(f"{who}: no face found in image {i} of the batch ({rgb.shape[1]}x{rgb.shape[0]}): "
                            "face.LandmarkParser needs a roughly frontal face of at least ~80 px", who, "image")
        try:
            chosen, note = choose_faces(found, self.params.face)
        except IndexError as e:
            raise NodeError(f"{who}.params.face: {e} in image {i} (faces are numbered from the left, from 0)",
                            who, "face") from None
        if note:
            self.ctx.warn(f"image {i}: {note}")
        return [found[k] for k in chosen]

    def forward(self, image):
        imgs, labs, lms = [], [], []
        for i, x in enumerate(image):
            rgb = (x.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()
            for pts in self._faces(i, rgb):
                self._one(rgb, pts, imgs, labs, lms)
        labels = torch.stack(labs).to(image.device)
        return {"image": torch.stack(imgs).clamp(0, 1).to(image.device), "labels": labels,
                "centres": component_centres(labels).to(image.device), "landmarks": torch.stack(lms).to(image.device)}

    def _one(self, rgb: np.ndarray, pts: np.ndarray, imgs: list, labs: list, lms: list) -> None:
        """Parse (and align) one face of ``rgb``; appends its image, labels and landmarks."""
        lab = self.parser.parse(np.ascontiguousarray(rgb), pts)
        out = rgb.astype(np.float32) / 255
        if self.params.align:
            s = self.params.size
            m = alignment(pts, lab, s)
            out = cv2.warpAffine(out, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            lab = cv2.warpAffine(lab.astype(np.uint8), m, (s, s), flags=cv2.INTER_NEAREST,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(np.int64)
            pts = pts @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32)
        imgs.append(torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1))))
        labs.append(torch.from_numpy(lab))
        lms.append(torch.from_numpy(pts.astype(np.float32)))
