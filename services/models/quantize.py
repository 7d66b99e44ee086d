"""`maam models quantize NAME [--calibration DIR]`: ONNX Runtime static INT8 quantization (QDQ
format: int8 weights, per-channel; activations calibrated on real images) written as a new model
`NAME-int8` with its own config and a sidecar saying precision int8. Source document 3.2.2."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import version_converter

from services.common.model_repository import CONFIG_FILE, SIDECAR_FILE, ModelMeta, ModelRepository, parse_config
from services.models.errors import ModelsError
from services.models.samples import image_batches, is_image_model, photos
from services.models.writer import staged_model_dir, write_config, write_sidecar, write_weights


def int8_name(name: str) -> str:
    return f"{name}-int8"


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over prepared photos."""

    def __init__(self, batches: list[dict[str, np.ndarray]]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - not used by MinMax calibration
        raise NotImplementedError


# Per-channel QDQ needs DequantizeLinear's `axis` attribute, which opset 13 introduced.
MIN_OPSET = 13


def _at_least_opset(path: Path, target: Path) -> Path:
    """The model itself, or a copy converted up to MIN_OPSET (older PaddleOCR exports use opset 11)."""
    model = onnx.load(str(path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset >= MIN_OPSET:
        return path
    try:
        converted = version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:
        raise ModelsError(f"{path}: cannot convert opset {opset} to {MIN_OPSET} for quantization: {exc}") from exc
    onnx.save(converted, str(target))
    return target


def _output_nodes(path: Path) -> list[str]:
    """Nodes that write graph outputs stay in float. A YOLO head concatenates box coordinates (0-640)
    with class scores (0-1): one INT8 scale for both would flatten the scores to a few levels."""
    model = onnx.load(str(path), load_external_data=False)
    outputs = {o.name for o in model.graph.output}
    return [node.name for node in model.graph.node if node.name and outputs.intersection(node.output)]


def quantize(
    repository: Path, name: str, calibration: Path | None = None, *, out_name: str | None = None, limit: int = 32,
    force: bool = False,
) -> Path:
    """Writes `NAME-int8`; returns its directory. A model whose sidecar says quantizing it was measured to
    break it (`params.quantization`) is refused unless `force`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    repo = ModelRepository(Path(repository))
    spec = repo.get_installed(name)
    if not spec.triton:
        raise ModelsError(f"{name} runs on {spec.runtime}, not ONNX Runtime; only ONNX models can be quantized")
    if spec.meta.precision == "int8":
        raise ModelsError(f"{name} is already INT8")
    if spec.meta.params.get("quantization") and not force:
        raise ModelsError(f"{name}: {spec.meta.params['quantization']}; pass --force to quantize it anyway")
    if not is_image_model(spec):
        raise ModelsError(
            f"{name}: static quantization calibrates with images; {name} does not take one RGB image input"
        )
    images = photos(calibration, limit=limit)
    batches = list(image_batches(spec, images, batch=1))
    target = out_name or int8_name(name)
    with tempfile.TemporaryDirectory() as tmp:
        source = _at_least_opset(spec.weights_path, Path(tmp) / "upgraded.onnx")
        prepared = Path(tmp) / "prepared.onnx"
        try:
            # Shape inference + graph optimisation first, as ONNX Runtime recommends for QDQ.
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        except Exception:
            shutil.copyfile(source, prepared)
        quantized = Path(tmp) / "model.onnx"
        try:
            quantize_static(
                str(prepared),
                str(quantized),
                _Reader(batches),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=_output_nodes(prepared),
            )
        except Exception as exc:
            raise ModelsError(f"{name}: ONNX Runtime could not quantize it: {type(exc).__name__}: {exc}") from exc
        try:
            ort.InferenceSession(str(quantized), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelsError(f"{name}: the quantized graph does not load in ONNX Runtime: {exc}") from exc
        config = parse_config((spec.path / CONFIG_FILE).read_text(encoding="utf-8"), str(spec.path / CONFIG_FILE))
        config.name = target
        meta = ModelMeta(
            task=spec.meta.task,
            source=spec.meta.source,
            labels=spec.meta.labels,
            description=f"static INT8 (QDQ, per-channel weights) of {name}, calibrated on {len(batches)} images",
            license=spec.meta.license,
            precision="int8",
            params={**spec.meta.params, "quantized_from": name},
        )
        with staged_model_dir(Path(repository), target) as model_dir:
            write_weights(model_dir, quantized)
            write_config(model_dir, config)
            write_sidecar(model_dir, meta)
            # Tokenizers, label files and other files beside the config travel with the model.
            for item in spec.path.iterdir():
                if item.is_file() and item.name not in (CONFIG_FILE, SIDECAR_FILE):
                    shutil.copyfile(item, model_dir / item.name)
    return Path(repository) / target
