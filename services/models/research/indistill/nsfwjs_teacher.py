"""The nsfwjs MobileNetV2 NSFW classifier (npm `nsfwjs@4.3.0`, MIT) as a torch module: its Keras "layers"
model (topology and uint8-quantized weights inside bundled JS modules) loaded into torchvision's
MobileNetV2 plus the Keras head (dense 256 → 128 → 5, softmax). Input: RGB in [0, 1], 224 × 224, NCHW.

Keras pads stride-2 convolutions by one pixel at the bottom and right only (ZeroPadding2D((0,1),(0,1)) then
"valid"), torchvision symmetrically; the stride-2 convolutions are swapped for ones that pad as Keras does,
so the torch model computes the original's function (the test compares it with TensorFlow.js itself)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v2

from services.models.errors import ModelsError
from services.models.research.indistill.js_literal import exported_literal
from services.models.research.npm_package import fetch_npm_package

PACKAGE, VERSION = "nsfwjs", "4.3.0"
MODEL_DIR = "dist/models/mobilenet_v2"
LABELS = ("Drawing", "Hentai", "Neutral", "Porn", "Sexy")
INPUT_SIZE = 224
LICENSE = "MIT (nsfwjs package; the weights are part of it)"


@dataclass(frozen=True)
class KerasModel:
    topology: dict[str, Any]  # model.json's modelTopology
    weights: dict[str, np.ndarray]  # Keras weight name -> float32 array (dequantized)


def _dequantize(raw: bytes, specs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Splits a weight shard by its manifest; uint8-quantized weights become q · scale + min."""
    out: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        shape = tuple(int(d) for d in spec["shape"])
        count = int(np.prod(shape)) if shape else 1
        quant = spec.get("quantization")
        if quant is not None:
            if quant.get("dtype") != "uint8":
                raise ModelsError(f"{spec['name']}: quantization {quant.get('dtype')!r} is not supported")
            values = np.frombuffer(raw, np.uint8, count, offset).astype(np.float32)
            values = values * np.float32(quant["scale"]) + np.float32(quant["min"])
            offset += count
        else:
            if spec.get("dtype", "float32") != "float32":
                raise ModelsError(f"{spec['name']}: dtype {spec.get('dtype')!r} is not supported")
            values = np.frombuffer(raw, np.float32, count, offset).copy()
            offset += 4 * count
        out[spec["name"]] = values.reshape(shape)
    if offset != len(raw):
        raise ModelsError(f"the weight shards hold {len(raw)} bytes, the manifest describes {offset}")
    return out


def read_keras_model(model_dir: Path) -> KerasModel:
    """Topology and weights from nsfwjs's `model.min.js` and `group*-shard*.min.js` modules."""
    model_dir = Path(model_dir)
    module = exported_literal((model_dir / "model.min.js").read_text(encoding="utf-8"))
    raw = b""
    specs: list[dict[str, Any]] = []
    for group in module["weightsManifest"]:
        for path in group["paths"]:
            shard = exported_literal((model_dir / f"{path}.min.js").read_text(encoding="utf-8"))
            raw += base64.b64decode(shard)
        specs.extend(group["weights"])
    return KerasModel(module["modelTopology"], _dequantize(raw, specs))


def fetch_keras_model(cache: Path | None = None) -> KerasModel:
    return read_keras_model(fetch_npm_package(PACKAGE, VERSION, cache) / MODEL_DIR)


class KerasStride2Conv(nn.Conv2d):
    """A stride-2 Conv2d computing Keras' ZeroPadding2D((0, 1), (0, 1)) + "valid" (same state keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (0, 1, 0, 1)))


def _keras_padded(conv: nn.Conv2d) -> KerasStride2Conv:
    return KerasStride2Conv(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation, conv.groups,
        bias=conv.bias is not None,
    )


class MobileNetClassifier(nn.Module):
    """MobileNetV2 features → global average pool → the nsfwjs head (dense 256 → 128 → N, ReLU, dropout)
    or one linear layer; `forward` gives probabilities (softmax), `logits` and `embed` the parts."""

    def __init__(self, features: nn.Module, channels: int, num_classes: int, head: bool = True) -> None:
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)  # = Keras' 7 × 7 AveragePooling2D at 224 pixels
        self.head: nn.Module = (
            nn.Sequential(
                nn.Linear(channels, 256), nn.ReLU(), nn.Dropout(0.5),
                nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.25),
                nn.Linear(128, num_classes),
            )
            if head
            else nn.Linear(channels, num_classes)
        )

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(images)), 1)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(images), dim=1)


def keras_mobilenet_v2(
    width_mult: float = 1.0, num_classes: int = len(LABELS), head: bool = True
) -> MobileNetClassifier:
    """torchvision's MobileNetV2 with Keras' stride-2 padding and BN epsilon, and the nsfwjs head."""
    backbone = mobilenet_v2(width_mult=width_mult)
    for parent in backbone.features.modules():
        for key, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d) and child.stride == (2, 2):
                setattr(parent, key, _keras_padded(child))
            elif isinstance(child, nn.BatchNorm2d):
                child.eps = 1e-3
    return MobileNetClassifier(backbone.features, backbone.last_channel, num_classes, head)


def _block_names(index: int) -> dict[str, str]:
    """Keras layer names of torchvision `features[index]` (an InvertedResidual), by torch sub-path."""
    if index == 1:
        return {
            "conv.0.0": "expanded_conv_depthwise", "conv.0.1": "expanded_conv_depthwise_BN",
            "conv.1": "expanded_conv_project", "conv.2": "expanded_conv_project_BN",
        }
    block = f"block_{index - 1}"
    return {
        "conv.0.0": f"{block}_expand", "conv.0.1": f"{block}_expand_BN",
        "conv.1.0": f"{block}_depthwise", "conv.1.1": f"{block}_depthwise_BN",
        "conv.2": f"{block}_project", "conv.3": f"{block}_project_BN",
    }


def keras_to_torch_names(blocks: int = 17) -> dict[str, str]:
    """torch module path -> Keras layer name, for MobileNetV2 features + the nsfwjs head."""
    names = {"features.0.0": "Conv1", "features.0.1": "bn_Conv1",
             f"features.{blocks + 1}.0": "Conv_1", f"features.{blocks + 1}.1": "Conv_1_bn",
             "head.0": "dense_1", "head.3": "dense_2", "head.6": "dense_3"}
    for index in range(1, blocks + 1):
        names.update({f"features.{index}.{k}": v for k, v in _block_names(index).items()})
    return names


def _torch_param(module: nn.Module, keras: dict[str, np.ndarray], layer: str) -> dict[str, np.ndarray]:
    def get(suffix: str) -> np.ndarray:
        key = f"{layer}/{suffix}"
        if key not in keras:
            raise ModelsError(f"the Keras model has no weight {key!r}")
        return keras[key]

    if isinstance(module, nn.BatchNorm2d):
        return {"weight": get("gamma"), "bias": get("beta"),
                "running_mean": get("moving_mean"), "running_var": get("moving_variance")}
    if isinstance(module, nn.Linear):
        return {"weight": get("kernel").T, "bias": get("bias")}
    if isinstance(module, nn.Conv2d):
        if module.groups > 1:  # depthwise [kh, kw, in, 1] -> [in, 1, kh, kw]
            return {"weight": get("depthwise_kernel").transpose(2, 3, 0, 1)}
        return {"weight": get("kernel").transpose(3, 2, 0, 1)}
    raise ModelsError(f"no Keras weight mapping for {type(module).__name__}")


def load_teacher(model: KerasModel) -> MobileNetClassifier:
    """The nsfwjs MobileNetV2 as a torch module (eval mode), every weight taken from the package."""
    net = keras_mobilenet_v2()
    modules = dict(net.named_modules())
    used: set[str] = set()
    with torch.no_grad():
        for path, layer in keras_to_torch_names().items():
            module = modules[path]
            for name, value in _torch_param(module, model.weights, layer).items():
                target = getattr(module, name)
                if tuple(target.shape) != value.shape:
                    raise ModelsError(f"{layer}: shape {value.shape} does not fit {path}.{name} {tuple(target.shape)}")
                target.copy_(torch.from_numpy(np.ascontiguousarray(value)))
            used.update(k for k in model.weights if k.startswith(f"{layer}/"))
    left = sorted(set(model.weights) - used)
    if left:
        raise ModelsError(f"Keras weights not loaded into the torch model: {', '.join(left[:5])}")
    return net.eval()
