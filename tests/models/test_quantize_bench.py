"""Static INT8 quantization of a small conv classifier calibrated on real photos: the INT8 model is
smaller, carries QDQ nodes and its own config/sidecar, and `bench` reports the ratios and the
agreement it measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from skimage import data
from typer.testing import CliRunner

from services.common.model_repository import ModelRepository
from services.models.bench import bench
from services.models.cli import app
from services.models.errors import ModelsError
from services.models.importer import import_onnx
from services.models.quantize import quantize

SIZE = 64
LABELS = [f"class_{i}" for i in range(10)]


def _conv_classifier(path: Path) -> Path:
    """conv(3->32) relu conv(32->64) relu GAP gemm(64->10) softmax, fixed random weights."""
    rng = np.random.default_rng(0)

    def w(*shape: int, scale: float) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    inits = [
        numpy_helper.from_array(w(32, 3, 3, 3, scale=0.3), "c1w"), numpy_helper.from_array(w(32, scale=0.1), "c1b"),
        numpy_helper.from_array(w(64, 32, 3, 3, scale=0.08), "c2w"), numpy_helper.from_array(w(64, scale=0.1), "c2b"),
        numpy_helper.from_array(w(64, 10, scale=0.5), "fw"), numpy_helper.from_array(w(10, scale=0.1), "fb"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "c1w", "c1b"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "c2w", "c2b"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fw", "fb"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "conv_classifier",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", len(LABELS)])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    import_onnx(root, "conv", _conv_classifier(tmp_path / "conv.onnx"), "classification", labels=LABELS,
                params={"input_size": SIZE, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})
    return root


def test_int8_model_is_smaller_and_bench_reports_ratios_and_agreement(
    repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        Image.fromarray(getattr(data, name)()).save(calibration / f"{name}.png")
    (calibration / "broken.jpg").write_bytes(b"not an image")  # skipped, not fatal

    path = quantize(repository, "conv", calibration)
    repo = ModelRepository(repository)
    fp32, int8 = repo.get_installed("conv"), repo.get_installed("conv-int8")
    assert path.name == "conv-int8" and int8.config.name == "conv-int8"
    assert int8.meta.precision == "int8" and int8.meta.params["quantized_from"] == "conv"
    assert int8.meta.labels == fp32.meta.labels and int8.task == "classification"
    assert int8.weights_path.stat().st_size < 0.6 * fp32.weights_path.stat().st_size
    ops = {node.op_type for node in onnx.load(str(int8.weights_path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops

    lines = bench(repository, "conv", "conv-int8", count=6, repeats=2, threads=1)
    out = capsys.readouterr().out
    size_line = next(line for line in lines if line.startswith("size ratio"))
    ratio = float(size_line.rsplit(" ", 1)[1])
    assert 0 < ratio < 0.6 and size_line in out
    assert any(line.startswith("latency ratio conv-int8/conv:") for line in lines)
    agreement = next(line for line in lines if line.startswith("agreement (top-1) on 6 inputs"))
    value = float(agreement.split(": ")[1].split(";")[0])
    assert 0.0 <= value <= 1.0  # measured, whatever it is


def test_default_calibration_uses_skimage_photos_via_cli(repository: Path) -> None:
    result = CliRunner().invoke(app, ["quantize", "conv", "--repository", str(repository)])
    assert result.exit_code == 0, result.output
    assert "calibrated on 12 images" in ModelRepository(repository).get("conv-int8").meta.description
    result = CliRunner().invoke(app, ["bench", "conv", "--vs", "conv-int8", "--count", "3", "--repeats", "1",
                                      "--repository", str(repository)])
    assert result.exit_code == 0, result.output
    assert "size ratio conv-int8/conv" in result.output and "agreement (top-1)" in result.output


def test_quantize_refuses_what_it_cannot_do(repository: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelsError, match="no readable images"):
        quantize(repository, "conv", empty)
    quantize(repository, "conv", None)
    with pytest.raises(ModelsError, match="already INT8"):
        quantize(repository, "conv-int8")
    result = CliRunner().invoke(app, ["quantize", "absent", "--repository", str(repository)])
    assert result.exit_code == 1 and "not installed" in result.output


def test_a_model_measured_to_break_is_refused_without_force(repository: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from services.models.packaged.catalog import NANODET

    # NanoDet's INT8 copy agreed 0.48 with FP32 (docs/models.md): its packaged sidecar says so.
    assert "0.48" in NANODET.meta.params["quantization"]
    copy = tmp_path / "refusing"
    shutil.copytree(repository, copy)
    sidecar = copy / "conv" / "maam.json"
    meta = json.loads(sidecar.read_text())
    meta.setdefault("params", {})["quantization"] = "its INT8 copy was measured to break it"
    sidecar.write_text(json.dumps(meta))
    shutil.rmtree(copy / "conv-int8", ignore_errors=True)
    with pytest.raises(ModelsError, match="measured to break it; pass --force"):
        quantize(copy, "conv")
    refused = CliRunner().invoke(app, ["quantize", "conv", "--repository", str(copy)])
    assert refused.exit_code == 1 and "--force" in refused.output
    forced = CliRunner().invoke(app, ["quantize", "conv", "--force", "--repository", str(copy)])
    assert forced.exit_code == 0, forced.output
    assert (copy / "conv-int8" / "1" / "model.onnx").is_file()
