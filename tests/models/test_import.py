"""`import`: a foreign ONNX graph is read, checked against its task and installed with a generated
config; anything that does not fit is refused with the reason, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from services.common.model_repository import ModelRepository
from services.models.cli import app
from services.models.errors import ModelsError
from services.models.importer import import_onnx


def _classifier(path: Path, classes: int = 4, channels: int = 3) -> Path:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("GlobalAveragePool", ["pixels"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "byo",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", channels, 64, 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", classes])],
        [numpy_helper.from_array(rng.standard_normal((channels, classes)).astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_import_reads_io_from_the_graph(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\nbird\nfish\n")
    result = CliRunner().invoke(app, [
        "import", "my_classifier", "--onnx", str(_classifier(tmp_path / "m.onnx")), "--task", "classification",
        "--labels", str(labels), "--repository", str(tmp_path / "repo"),
    ])
    assert result.exit_code == 0, result.output
    spec = ModelRepository(tmp_path / "repo").get_installed("my_classifier")
    assert spec.task == "classification" and spec.meta.source == "imported"
    assert spec.meta.labels == ("cat", "dog", "bird", "fish")
    assert [(t.name, list(t.dims)) for t in spec.config.input] == [("pixels", [3, 64, 64])]
    assert [(t.name, list(t.dims)) for t in spec.config.output] == [("probs", [4])]
    assert spec.max_batch_size == 8 and spec.dynamic_batching


@pytest.mark.parametrize(
    ("task", "kwargs", "message"),
    [
        ("text_embedding", {}, "input 'pixels' is TYPE_FP32, the adapter needs TYPE_INT64"),
        ("classification", {"labels": ["a", "b"]}, "2 labels given, the graph's output 'probs' has 4 classes"),
        ("ocr_detection", {}, "output 'probs' has rank 2"),
        ("no_such_task", {}, "unknown task 'no_such_task'"),
    ],
)
def test_a_graph_that_does_not_fit_its_task_is_refused(tmp_path: Path, task: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ModelsError, match=message):
        import_onnx(tmp_path / "repo", "m", _classifier(tmp_path / "m.onnx"), task, **kwargs)
    assert not (tmp_path / "repo" / "m").exists()


def test_grayscale_input_is_refused_for_an_image_task(tmp_path: Path) -> None:
    with pytest.raises(ModelsError, match="1 channels, the adapter feeds 3"):
        import_onnx(tmp_path / "repo", "m", _classifier(tmp_path / "m.onnx", channels=1), "classification")


def test_corrupt_truncated_or_missing_files_are_refused(tmp_path: Path) -> None:
    good = _classifier(tmp_path / "m.onnx").read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.onnx").write_text("not a model")
    for name in ("truncated.onnx", "text.onnx"):
        with pytest.raises(ModelsError, match="not a valid ONNX model"):
            import_onnx(tmp_path / "repo", "m", tmp_path / name, "classification")
    with pytest.raises(ModelsError, match="no such file"):
        import_onnx(tmp_path / "repo", "m", tmp_path / "absent.onnx", "classification")
    assert not (tmp_path / "repo" / "m").exists()


def test_names_and_existing_models_are_protected(tmp_path: Path) -> None:
    path = _classifier(tmp_path / "m.onnx")
    for bad in ("../escape", ".hidden", "a/b", ""):
        with pytest.raises(ModelsError, match="not allowed"):
            import_onnx(tmp_path / "repo", bad, path, "classification")
    import_onnx(tmp_path / "repo", "m", path, "classification")
    with pytest.raises(ModelsError, match="already exists"):
        import_onnx(tmp_path / "repo", "m", path, "classification")
    import_onnx(tmp_path / "repo", "m", path, "classification", replace=True)
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["m"]


def test_cli_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"\x00" * 10)
    result = CliRunner().invoke(app, [
        "import", "m", "--onnx", str(tmp_path / "bad.onnx"), "--task", "classification",
        "--repository", str(tmp_path / "repo"),
    ])
    assert result.exit_code == 1
    assert "not a valid ONNX model" in result.output and "Traceback" not in result.output


def test_a_failed_reinstall_leaves_the_previous_model_in_place(tmp_path: Path) -> None:
    from services.models.writer import staged_model_dir

    import_onnx(tmp_path / "repo", "m", _classifier(tmp_path / "m.onnx"), "classification")
    before = sorted(p.name for p in (tmp_path / "repo" / "m").rglob("*"))
    with pytest.raises(RuntimeError, match="export blew up"), staged_model_dir(tmp_path / "repo", "m") as staging:
        (staging / "partial.bin").write_bytes(b"half")
        raise RuntimeError("export blew up")
    assert sorted(p.name for p in (tmp_path / "repo" / "m").rglob("*")) == before
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["m"]  # no staging leftovers
    assert ModelRepository(tmp_path / "repo").get_installed("m").task == "classification"
