"""deploy/triton_cpu_repository.py: the compose cpu profile's KIND_CPU copy of the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from deploy.triton_cpu_repository import build, cpu_config_text
from services.common.inference.onnx_backend import OnnxBackend
from services.common.model_repository import ModelRepository
from tests.deploy.compose import REPO_ROOT
from tests.support.test_models import TEST_MODELS, example_inputs

CPU = model_config_pb2.ModelInstanceGroup.KIND_CPU


def _gpu_repository(test_repository: Path, root: Path) -> Path:
    """The test repository with GPU instance groups, as committed configs are."""
    shutil.copytree(test_repository, root)
    for config_path in root.glob("*/config.pbtxt"):
        config = model_config_pb2.ModelConfig()
        text_format.Parse(config_path.read_text(), config)
        del config.instance_group[:]
        config.instance_group.add(count=2, kind=model_config_pb2.ModelInstanceGroup.KIND_GPU, gpus=[0, 1])
        config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
        config_path.write_text(text_format.MessageToString(config))
    return root


async def test_cpu_copy_loads_and_infers_like_the_original(test_repository: Path, tmp_path: Path) -> None:
    source = _gpu_repository(test_repository, tmp_path / "gpu")
    dest = tmp_path / "cpu"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "deploy" / "triton_cpu_repository.py"), str(source), str(dest)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "test_classifier" in result.stdout
    repo = ModelRepository(dest)
    assert repo.errors == {} and sorted(m.name for m in repo.installed()) == sorted(TEST_MODELS)
    for spec in repo.models():
        original = ModelRepository(source).get(spec.name).config
        assert [(g.kind, g.count, list(g.gpus)) for g in spec.config.instance_group] == [(CPU, 2, [])]
        assert not spec.config.optimization.execution_accelerators.gpu_execution_accelerator
        assert spec.config.input == original.input and spec.config.output == original.output
        assert spec.config.dynamic_batching == original.dynamic_batching
        assert (dest / spec.name / "1").is_symlink()  # weights linked, never copied
    # The weights resolve through the links: same outputs from both repositories.
    async with OnnxBackend(ModelRepository(source), workers=1) as a, OnnxBackend(repo, workers=1) as b:
        inputs = example_inputs("test_classifier")
        np.testing.assert_array_equal(
            (await a.infer("test_classifier", inputs))["probs"], (await b.infer("test_classifier", inputs))["probs"]
        )


def test_rebuilding_replaces_stale_models_and_skips_broken_configs(test_repository: Path, tmp_path: Path) -> None:
    source = _gpu_repository(test_repository, tmp_path / "gpu")
    dest = tmp_path / "cpu"
    build(source, dest)
    shutil.rmtree(source / "test_unbatched")
    (source / "test_detector" / "config.pbtxt").write_text("name: [broken")
    written = build(source, dest)
    assert "test_unbatched" not in written and not (dest / "test_unbatched").exists()
    assert "test_detector" not in written and not (dest / "test_detector").exists()
    assert "test_classifier" in written


def test_broken_config_text_is_reported_with_its_origin() -> None:
    with pytest.raises(ValueError, match=r"m/config\.pbtxt: not a valid Triton model config"):
        cpu_config_text("instance_group [ { kind: KIND_WHAT } ]", "m/config.pbtxt")
