"""A COCO object detector: torchvision's SSDlite320 (MobileNetV3-Large) exported with its box
decoding inside the graph, in the YOLOv8 output layout the object_detection adapter reads:
`output0` [batch, 4 + 80, anchors] = (cx, cy, w, h in input pixels, then the 80 class scores)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from services.common.model_repository import ModelMeta
from services.models.errors import ModelsError, building, fetching, require_export_extra
from services.models.export.common import export_and_verify, write_exported

NAME = "ssdlite320_coco"
SIZE = 320
SKIP = ("__background__", "N/A")
RESIZE = {"resize": "stretch", "interpolation": "bilinear", "antialias": False}


def _yolo_layout_module(model, size: int):
    import torch
    from torchvision.models.detection.image_list import ImageList

    model = model.eval()
    with torch.no_grad():
        probe = torch.zeros(1, 3, size, size)
        features = list(model.backbone(probe).values())
        anchors = model.anchor_generator(ImageList(probe, [(size, size)]), features)[0]
    mean = torch.tensor(model.transform.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(model.transform.image_std).view(1, 3, 1, 1)
    weights = tuple(float(w) for w in model.box_coder.weights)
    clip = math.log(1000.0 / 16)  # torchvision's bbox_xform_clip

    class YoloLayoutSSD(torch.nn.Module):
        """RGB in [0, 1] at size x size -> [batch, 4 + classes, anchors], decoded like torchvision."""

        def __init__(self, keep: list[int]) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("anchors", anchors)
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)
            self.register_buffer("keep", torch.tensor(keep, dtype=torch.int64))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            head = self.model.head(list(self.model.backbone((images - self.mean) / self.std).values()))
            rel = head["bbox_regression"]
            widths = self.anchors[:, 2] - self.anchors[:, 0]
            heights = self.anchors[:, 3] - self.anchors[:, 1]
            ctr_x = self.anchors[:, 0] + 0.5 * widths
            ctr_y = self.anchors[:, 1] + 0.5 * heights
            wx, wy, ww, wh = weights
            cx = rel[..., 0] / wx * widths + ctr_x
            cy = rel[..., 1] / wy * heights + ctr_y
            w = torch.exp(torch.clamp(rel[..., 2] / ww, max=clip)) * widths
            h = torch.exp(torch.clamp(rel[..., 3] / wh, max=clip)) * heights
            # Clipped to the image as torchvision does, then back to centre/size.
            x1, x2 = torch.clamp(cx - w / 2, 0, size), torch.clamp(cx + w / 2, 0, size)
            y1, y2 = torch.clamp(cy - h / 2, 0, size), torch.clamp(cy + h / 2, 0, size)
            boxes = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)
            scores = torch.softmax(head["cls_logits"], dim=-1).index_select(2, self.keep)
            return torch.cat([boxes, scores], dim=-1).transpose(1, 2)

    return YoloLayoutSSD


def export_ssdlite(
    repository: Path, model, categories: list[str], *, name: str = NAME, source: str = "pulled", license: str
) -> float:
    """Exports a torchvision SSDlite320 (real or random-weight); returns ONNX vs torch max abs diff."""
    keep = [i for i, c in enumerate(categories) if c not in SKIP]
    labels = [categories[i] for i in keep]
    module = _yolo_layout_module(model, SIZE)(keep).eval()
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, SIZE, SIZE), dtype=np.float32)
    exported = export_and_verify(name, module, {"images": images}, ["output0"])
    anchors = int(module.anchors.shape[0])
    write_exported(
        repository, name, exported.model,
        ModelMeta(
            task="object_detection",
            source=source,
            labels=tuple(labels),
            description="SSDlite320 MobileNetV3-Large, COCO (torchvision), box decoding in the graph",
            license=license,
            params={
                "input_size": SIZE,
                "format": "yolov8",
                # torchvision's detection transform: the float image stretched to 320 x 320 with
                # bilinear interpolation, no antialiasing; the graph normalises itself.
                **RESIZE,
                "color": "RGB",
                "scale": 1 / 255,
                "score_threshold": 0.3,
                "nms_iou": float(getattr(model, "nms_thresh", 0.55)),
                "class_agnostic_nms": False,
            },
        ),
        output_dims={"output0": (4 + len(labels), anchors)},
    )
    return exported.max_abs_diff


def pull_ssdlite(repository: Path, upstream) -> float:
    require_export_extra("pulling the COCO detector", ("torch", "torchvision"))
    from torchvision.models.detection import SSDLite320_MobileNet_V3_Large_Weights, ssdlite320_mobilenet_v3_large

    weights = SSDLite320_MobileNet_V3_Large_Weights.COCO_V1
    if weights.url != upstream.id:
        raise ModelsError(f"torchvision's COCO_V1 weights are {weights.url}, the pull table pins {upstream.id}")
    categories = list(weights.meta["categories"])
    with fetching(f"torchvision SSDlite320 COCO weights ({weights.url})", host="download.pytorch.org"):
        state = weights.get_state_dict(progress=True, check_hash=True)  # the hash in the file name
    with building("torchvision SSDlite320 MobileNetV3-Large"):
        model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=len(categories))
        model.load_state_dict(state)
    return export_ssdlite(
        repository, model, categories,
        license="BSD-3-Clause (torchvision code and weights; trained on COCO, CC-BY-4.0 annotations)",
    )
