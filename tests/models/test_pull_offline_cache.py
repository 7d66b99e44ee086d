"""`maam models pull` end to end through its CLI for a user whose Hugging Face cache already holds the
weights (HF_HUB_OFFLINE=1): the pinned revision is read from the cache, the model built, checked,
exported and installed. The cache is filled here with random weights in the upstream file layout
(this machine cannot download the real ones), so what is tested is the pull's path, not the weights."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="pull needs torch from the [export] extra (not installed)")

from services.common.model_repository import ModelRepository  # noqa: E402
from services.models.export.common import onnx_outputs  # noqa: E402
from services.models.pull import PULLABLE  # noqa: E402
from tests.models.test_faces_pull import maam_models  # noqa: E402
from tests.support.processes import child_env  # noqa: E402

LOCAL_COMMIT = "1" * 40  # what `main` resolves to in this local cache (a repo with no pin in the table)


def _cache_file(cache: Path, repo_id: str, revision: str | None, filename: str, state: dict) -> None:
    from safetensors.torch import save_file

    commit = revision or LOCAL_COMMIT
    root = cache / f"models--{repo_id.replace('/', '--')}"
    (root / "snapshots" / commit).mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    save_file({k: v.contiguous() for k, v in state.items()}, str(root / "snapshots" / commit / filename))


def _pull(name: str, repository: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*maam_models(), "pull", name, "--repository", str(repository)],
        env=child_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache)), capture_output=True, text=True, timeout=900,
    )


@pytest.mark.slow
def test_pull_vit_b16_in21k_from_the_hub_cache(tmp_path: Path) -> None:
    import timm

    from services.models.export.vit import TIMM_NAME, _features_module

    up = PULLABLE["vit_b16_in21k"].upstream
    torch.manual_seed(0)
    reference = timm.create_model(TIMM_NAME, pretrained=False).eval()  # with its 21,843-class head
    _cache_file(tmp_path / "cache", up.id, up.revision, up.files[0], reference.state_dict())
    result = _pull("vit_b16_in21k", tmp_path / "repo", tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resolved to commit {LOCAL_COMMIT}" in result.stdout  # the unpinned pull names what it took
    spec = ModelRepository(tmp_path / "repo").get_installed("vit_b16_in21k")
    assert spec.task == "region_embedding"
    assert spec.meta.params["upstream"]["id"] == up.id
    assert (spec.meta.params["resize"], spec.meta.params["crop_pct"]) == ("shorter_side_center_crop", 0.9)
    reference.reset_classifier(0)
    images = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        want = _features_module(reference)(torch.from_numpy(images)).numpy()
    assert np.abs(onnx_outputs(spec.weights_path, {"images": images})[0] - want).max() < 1e-4


@pytest.mark.slow
def test_pull_clip_from_the_hub_cache_at_the_pinned_commit(tmp_path: Path) -> None:
    import open_clip

    from services.models.export.clip import build_clip

    up = PULLABLE["clip_vit_b32"].upstream
    torch.manual_seed(0)
    weights = build_clip("ViT-B-32", "openai").state_dict()
    _cache_file(tmp_path / "cache", up.id, up.revision, up.files[0], weights)
    result = _pull("clip_vit_b32", tmp_path / "repo", tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    repo = ModelRepository(tmp_path / "repo")
    image = repo.get_installed("clip_vit_b32_image")
    assert {m.name for m in repo.installed()} == {"clip_vit_b32_image", "clip_vit_b32_text"}
    assert image.meta.params["upstream"]["revision"] == up.revision and image.meta.params["quick_gelu"] is True
    quick = open_clip.create_model("ViT-B-32-quickgelu")
    quick.load_state_dict(weights)
    images = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        want = quick.eval().encode_image(torch.from_numpy(images), normalize=True).numpy()
    assert np.abs(onnx_outputs(image.weights_path, {"images": images})[0] - want).max() < 1e-4
    assert json.loads((image.path / "maam.json").read_text())["source"] == "pulled"
