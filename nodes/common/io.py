"""io family: read and write images, label maps, attribute vectors and tensors (atomic writes)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image as PILImage
from pydantic import Field
from safetensors import SafetensorError
from safetensors.torch import load_file

from nodegraph.node import InputFile, Node, NodeError, OutputFile, Params
from nodegraph.registry import register
from nodegraph.types import (
    Attributes,
    Image,
    LabelMap,
    PortType,
    Tensor,
    attribute_schema_names,
    get_attribute_schema,
    get_label_set,
    label_set_names,
)
from nodegraph.weights import save_atomic

from . import labelsets  # noqa: F401  (registers the label sets the io nodes name)
from .attrsets import vector_from_json
from .imageio import ImageFileError, colorize, decode_label_png, open_image, pil_to_tensor, save_png_atomic
from .imageio import tensor_to_uint8 as to_uint8


def _fail(node: Node, where: str, e: Exception) -> NodeError:
    return NodeError(f"{node.ctx.node_id}.params.{where}: {e}", node.ctx.node_id, where)


class _Saver(Node):
    is_sink = True

    def cache_valid(self) -> bool:
        # A cached save stands only while the written file is still there (and, checked by the
        # executor against written_files, holds the bytes written).
        return Path(self.params.path).exists() or Path(_numbered(self.params.path, 0)).exists()

    def written_files(self) -> list[str]:
        p = Path(self.params.path)
        if p.is_file():
            return [str(p)]
        return [str(f) for f in sorted(p.parent.glob(f"{p.stem}_[0-9][0-9][0-9]{p.suffix}"))]


def _numbered(path: str, i: int) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}_{i:03d}{p.suffix}"))


@register("io.LoadImage")
class LoadImage(Node):
    """Read an image file (PNG/JPEG/...) as a 1 x 3 x H x W Image in [0, 1].

    Grey and palette images are converted to RGB; transparency is composited on white.
    """

    class Params(Params):
        path: InputFile = Field(description="image file (relative paths: the graph's folder)")

    outputs = {"image": Image()}

    def forward(self) -> dict[str, Any]:
        try:
            image = pil_to_tensor(open_image(self.params.path))
        except ImageFileError as e:
            raise _fail(self, "path", e) from None
        return {"image": image.to(self.device)}


@register("io.SaveImage")
class SaveImage(_Saver):
    """Write an Image. A batch becomes one grid (``mode: grid``) or numbered files
    (``mode: numbered`` -> name_000.png, name_001.png, ...)."""

    class Params(Params):
        path: OutputFile = Field(description="output file (.png or .jpg)")
        mode: Literal["grid", "numbered"] = "grid"
        nrow: int = Field(0, ge=0, description="images per grid row (0 = about square)")
        padding: int = Field(2, ge=0, le=64)

    inputs = {"image": Image()}

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        try:
            if image.shape[0] == 1 or self.params.mode == "grid":
                save_png_atomic(to_uint8(make_grid(image, self.params.nrow, self.params.padding)),
                                self.params.path)
                self.ctx.emit("saved", node=self.ctx.node_id, path=self.params.path)
            else:
                for i in range(image.shape[0]):
                    p = _numbered(self.params.path, i)
                    save_png_atomic(to_uint8(image[i]), p)
                    self.ctx.emit("saved", node=self.ctx.node_id, path=p)
        except (ImageFileError, OSError) as e:
            raise _fail(self, "path", e) from None
        return {}


def make_grid(images: torch.Tensor, nrow: int = 0, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """N x C x H x W -> C x H' x W' contact grid."""
    n, c, h, w = images.shape
    if n == 1:
        return images[0]
    ncol = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / ncol)
    out = images.new_full((c, rows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value)
    for i in range(n):
        r, k = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        out[:, y:y + h, x:x + w] = images[i]
    return out


class _LabelSetParams(Params):
    label_set: str = Field(description="name of the label set (see `nodegraph nodes --label-sets`)")

    def model_post_init(self, _ctx: Any) -> None:
        if self.label_set not in label_set_names():
            raise ValueError(f"unknown label set {self.label_set!r} (known: {', '.join(label_set_names())})")


@register("io.LoadLabelMap")
class LoadLabelMap(Node):
    """Read a semantic label map: an index PNG (pixel value = class id) or a colour PNG painted
    in the label set's palette. Output: 1 x H x W int64 ids of ``label_set``."""

    class Params(_LabelSetParams):
        path: InputFile = Field(description="label map PNG")
        format: Literal["auto", "index", "color", "dataset"] = Field(
            "auto", description="auto: palette/grey PNG = index map, RGB = colour map; dataset: the "
            "label set's published annotation PNG (ade20k: value - 1, 0 = unlabelled; coco: 255 = "
            "unlabelled)")
        tolerance: float = Field(0.0, ge=0, le=255, description="max RGB distance to a palette colour")

        def model_post_init(self, _ctx: Any) -> None:
            super().model_post_init(_ctx)
            if self.format == "dataset" and self.label_set not in labelsets.DATASET_PNG:
                raise ValueError(f"format 'dataset' reads the published annotation PNGs of "
                                 f"{', '.join(labelsets.DATASET_PNG)}, not {self.label_set!r}; use index or color")

    outputs = {"labels": LabelMap()}

    @classmethod
    def resolve_ports(cls, params: Any, upstream: dict[str, PortType]) -> tuple[dict, dict]:
        return {}, {"labels": LabelMap(params.label_set)}

    def forward(self) -> dict[str, Any]:
        try:
            img, fmt = open_image(self.params.path), self.params.format
            if fmt == "dataset":
                raw = np.asarray(img if img.mode in ("P", "L", "I", "I;16") else img.convert("L")).astype(np.int64)
                img, fmt = PILImage.fromarray(labelsets.DATASET_PNG[self.params.label_set](raw).astype(np.int32),
                                              "I"), "index"
            ids = decode_label_png(img, get_label_set(self.params.label_set), fmt, self.params.tolerance)
        except ImageFileError as e:
            raise _fail(self, "path", e) from None
        return {"labels": torch.from_numpy(ids).unsqueeze(0).to(self.device)}


@register("io.SaveLabelMap")
class SaveLabelMap(_Saver):
    """Write a label map as a colourised PNG (palette of its label set) or an index PNG."""

    class Params(Params):
        path: OutputFile
        format: Literal["color", "index"] = "color"
        label_set: str = Field("", description="palette to use (default: the input's label set)")

    inputs = {"labels": LabelMap()}

    @classmethod
    def resolve_ports(cls, params: Any, upstream: dict[str, PortType]) -> tuple[dict, dict]:
        return {"labels": LabelMap(params.label_set or None)}, {}

    def forward(self, labels: torch.Tensor) -> dict[str, Any]:
        name = self.params.label_set or self._upstream_label_set()
        ids = labels[0]
        try:
            if self.params.format == "index":
                save_png_atomic(ids.cpu().numpy().astype(np.uint8), self.params.path)
            else:
                save_png_atomic(colorize(ids, get_label_set(name)), self.params.path)
        except (ImageFileError, OSError, KeyError) as e:
            raise _fail(self, "path", e) from None
        return {}

    def _upstream_label_set(self) -> str:
        up = self.ctx.input_types.get("labels")
        name = getattr(up, "label_set", None)
        if not name:
            raise NodeError(f"{self.ctx.node_id}.params.label_set: the input's label set is not known; "
                            "name the palette with params.label_set", self.ctx.node_id, "label_set")
        return name


@register("io.LoadTensor")
class LoadTensor(Node):
    """Read one tensor from a .safetensors file."""

    class Params(Params):
        path: InputFile
        key: str = Field("", description="tensor name in the file (empty: the only tensor)")

    outputs = {"tensor": Tensor()}

    def forward(self) -> dict[str, Any]:
        try:
            tensors = load_file(self.params.path, device=str(self.device))
        except (SafetensorError, OSError, ValueError) as e:
            raise _fail(self, "path", f"cannot read safetensors file: {e}") from None
        if not self.params.key:
            if len(tensors) != 1:
                raise _fail(self, "key", f"the file holds {len(tensors)} tensors "
                                         f"({', '.join(sorted(tensors))}); choose one with params.key")
            return {"tensor": next(iter(tensors.values()))}
        if self.params.key not in tensors:
            raise _fail(self, "key", f"no tensor {self.params.key!r} (has {', '.join(sorted(tensors))})")
        return {"tensor": tensors[self.params.key]}


@register("io.SaveTensor")
class SaveTensor(_Saver):
    """Write a tensor to a .safetensors file (atomically)."""

    class Params(Params):
        path: OutputFile
        key: str = "tensor"

    inputs = {"tensor": Tensor()}

    def forward(self, tensor: torch.Tensor) -> dict[str, Any]:
        save_atomic({self.params.key: tensor}, Path(self.params.path))
        return {}


@register("io.LoadAttributes")
class LoadAttributes(Node):
    """Read attribute vectors from a JSON file: one object ``{attribute name: value}`` (a batch of 1)
    or a list of objects (a batch). Names are the schema's (``cub312``: ``has_bill_shape::cone``); a
    value is 0/1 or a certainty in [0, 1]; a group may name its values (``"has_wing_color": "red"``
    or a list). Unnamed attributes are 0. An unknown name is an error listing the near matches.
    Output: N x K ``Attributes`` of ``schema``."""

    with warnings.catch_warnings():  # the issue names the param 'schema', which pydantic's BaseModel.schema() shadows
        warnings.simplefilter("ignore", UserWarning)

        class Params(Params):
            path: InputFile = Field(description="JSON file of attribute names -> 0/1 or certainty")
            schema: str = Field("cub312", description="attribute schema (see nodes/common/attrsets.py)")

            def model_post_init(self, _ctx: Any) -> None:
                if self.schema not in attribute_schema_names():
                    raise ValueError(f"unknown attribute schema {self.schema!r} "
                                     f"(known: {', '.join(attribute_schema_names())})")

    outputs = {"attributes": Attributes()}

    @classmethod
    def resolve_ports(cls, params: Any, upstream: dict[str, PortType]) -> tuple[dict, dict]:
        return {}, {"attributes": Attributes(params.schema)}

    def forward(self) -> dict[str, Any]:
        try:
            raw = json.loads(Path(self.params.path).read_text())
            items = raw if isinstance(raw, list) else [raw]
            schema = get_attribute_schema(self.params.schema)
            rows = [vector_from_json(obj, schema, i) for i, obj in enumerate(items)]
        except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
            raise _fail(self, "path", f"{self.params.path}: {e}") from None
        if not rows:
            raise _fail(self, "path", f"{self.params.path}: an empty list holds no attribute vector")
        return {"attributes": torch.tensor(rows, dtype=torch.float32, device=self.device)}
