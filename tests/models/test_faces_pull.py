"""The face models' install path (the InsightFace packs ship ONNX, so `pull` = download + check +
config) on tiny random graphs shaped like SCRFD and ArcFace; and pulling without network."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from services.common.model_repository import ModelRepository
from services.models.errors import ModelsError, fetching
from services.models.export.faces import install_faces
from services.models.pull import pull
from tests.support.processes import child_env, maam


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _scrfd_like(path: Path) -> Path:
    """Input [1, 3, H, W]; per stride 8/16/32: scores [N, 1], boxes [N, 4], landmarks [N, 10]."""
    rng = np.random.default_rng(0)
    nodes, outputs, inits = [], [], []
    for stride in (8, 16, 32):
        nodes.append(helper.make_node("AveragePool", ["input.1"], [f"p{stride}"], kernel_shape=[stride, stride],
                                      strides=[stride, stride]))
        for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
            w = numpy_helper.from_array((rng.standard_normal((2 * width, 3, 1, 1)) * 0.1).astype(np.float32),
                                        f"w_{kind}{stride}")
            inits.append(w)
            nodes += [
                helper.make_node("Conv", [f"p{stride}", w.name], [f"c_{kind}{stride}"]),
                helper.make_node("Transpose", [f"c_{kind}{stride}"], [f"t_{kind}{stride}"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", [f"t_{kind}{stride}", f"shape{width}"], [f"{kind}_{stride}"]),
            ]
            outputs.append(helper.make_tensor_value_info(f"{kind}_{stride}", TensorProto.FLOAT, ["n", width]))
    for width in (1, 4, 10):
        inits.append(numpy_helper.from_array(np.array([-1, width], np.int64), f"shape{width}"))
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])
    return _save(helper.make_graph(nodes, "scrfd_like", [image], outputs, inits), path)


def _arcface_like(path: Path) -> Path:
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Flatten", ["input.1"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w"], ["683"]),
    ]
    inits = [numpy_helper.from_array((rng.standard_normal((3 * 112 * 112, 512)) * 0.01).astype(np.float32), "w")]
    graph = helper.make_graph(
        nodes, "arcface_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", 512])], inits,
    )
    return _save(graph, path)


def test_face_models_install_with_generated_configs(tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    names = install_faces(repo_dir, _scrfd_like(tmp_path / "det.onnx"), _arcface_like(tmp_path / "rec.onnx"),
                          source="test", license="test")
    repo = ModelRepository(repo_dir)
    assert repo.errors == {} and names == ["scrfd_10g", "arcface_r50"]
    det, rec = repo.get_installed("scrfd_10g"), repo.get_installed("arcface_r50")
    # SCRFD's graph has a fixed batch of 1: Triton gets full shapes and no batching.
    assert det.task == "face_detection" and det.max_batch_size == 0 and not det.dynamic_batching
    assert list(det.config.input[0].dims) == [1, 3, -1, -1] and len(det.config.output) == 9
    assert det.meta.params["strides"] == [8, 16, 32]
    assert rec.task == "face_embedding" and rec.max_batch_size == 8 and rec.dynamic_batching
    assert list(rec.config.input[0].dims) == [3, 112, 112] and list(rec.config.output[0].dims) == [512]
    session = ort.InferenceSession(str(det.weights_path), providers=["CPUExecutionProvider"])
    outs = session.run(None, {"input.1": np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)})
    assert [o.shape for o in outs[:3]] == [(128, 1), (128, 4), (128, 10)]  # 8x8 cells x 2 anchors at stride 8


def test_fetching_fails_fast_with_the_offline_hint() -> None:
    with pytest.raises(ModelsError, match="unreachable") as info, fetching("some weights", host="weights.invalid"):
        raise AssertionError("the body must not run when the host is unreachable")
    assert "install-shipped" in str(info.value)


def test_a_download_error_becomes_a_models_error() -> None:
    with pytest.raises(ModelsError, match="could not download tiny weights: ConnectionError: refused"), \
            fetching("tiny weights", host=None):
        raise ConnectionError("refused")


def test_pull_of_an_unknown_model_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelsError, match="clip_vit_b32"):
        pull(tmp_path, "no_such_model")
    assert not tmp_path.joinpath("no_such_model").exists()


@pytest.mark.slow
def test_pull_without_network_prints_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="pull needs torch from the [export] extra (not installed)")
    # HF_HUB_OFFLINE: even on a machine with internet, this test never downloads weights.
    result = subprocess.run(
        [*maam_models(), "pull", "clip_vit_b32", "--repository", str(tmp_path)],
        env=child_env(HF_HUB_OFFLINE="1"), capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 1
    assert "could not download" in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert list(tmp_path.iterdir()) == []


def maam_models() -> list[str]:
    """The models CLI of this checkout (the lead mounts it as `maam models`)."""
    command = maam()
    return [command[0], "-m", "services.models.cli"]
