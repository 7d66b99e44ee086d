"""The CLIP zero-shot heads (`maam models pull clip_zeroshot`), built offline from the full-size
open_clip ViT-B-32 with random weights: a head's cosine equals, to 1e-5, the cosine of torch's CLIP
image embedding with the mean of torch's prompt embeddings; its scores are CLIP's calibrated softmax;
its prompts and threshold live in maam.json; a head follows its CLIP when that changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="building CLIP needs torch from the [export] extra (not installed)")

from skimage import data as skdata  # noqa: E402

from services.annotation.models.preprocess import model_input  # noqa: E402
from services.annotation.models.zeroshot import ZeroShotHead, build_zeroshot  # noqa: E402
from services.common.inference import create_backend  # noqa: E402
from services.common.model_repository import ModelRepository  # noqa: E402
from services.common.settings import InferenceSettings, Settings  # noqa: E402
from services.models.errors import ModelsError  # noqa: E402
from services.models.pull import pull  # noqa: E402
from services.models.zeroshot.build import pull_zeroshot, rebuild_stale, stale  # noqa: E402
from tests.support.zeroshot_repository import CLIP, HEADS, ZeroShotRepository  # noqa: E402

ASYNC = pytest.mark.asyncio(loop_scope="session")


def torch_text_means(clip, prompts: dict[str, list[str]]) -> np.ndarray:
    """[classes, D]: each class's mean prompt embedding (torch, open_clip's own tokenizer), normalised."""
    import open_clip

    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=77)
    rows = []
    with torch.no_grad():
        for texts in prompts.values():
            vectors = clip.encode_text(tokenizer(texts), normalize=True).double()
            mean = vectors.mean(dim=0)
            rows.append((mean / mean.norm()).numpy())
    return np.stack(rows)


def torch_image_embeddings(clip, params: dict, images: list[np.ndarray]) -> np.ndarray:
    batch = torch.from_numpy(np.stack([model_input(rgb, params) for rgb in images]))
    with torch.no_grad():
        return clip.encode_image(batch, normalize=True).double().numpy()


def photos() -> list[np.ndarray]:
    return [skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()]


def onnx_backend(root: Path):
    settings = Settings(model_repository=root, inference=InferenceSettings(backend="onnx", onnx_workers=1))
    return create_backend(settings, ModelRepository(root))


@ASYNC
@pytest.mark.parametrize("name", HEADS)
async def test_head_is_the_cosine_with_the_mean_prompt_embedding(zeroshot_repository: ZeroShotRepository,
                                                                 name: str) -> None:
    root, clip = zeroshot_repository.root, zeroshot_repository.clip
    repo = ModelRepository(root)
    spec = repo.get_installed(name)
    image_params = repo.get_installed(f"{CLIP}_image").meta.params
    backend = onnx_backend(root)
    try:
        head = build_zeroshot(spec, backend)
        assert isinstance(head, ZeroShotHead)
        out = await head.heads(photos())
    finally:
        await backend.close()
    want = torch_image_embeddings(clip, image_params, photos()) @ torch_text_means(clip, spec.meta.params["prompts"]).T
    assert out["cosine"].shape == want.shape == (4, len(spec.meta.labels))
    assert np.max(np.abs(out["cosine"] - want)) < 1e-5
    assert np.std(want) > 1e-4  # the classes differ: an equality of constants would prove nothing
    scale = spec.meta.params["logit_scale"]
    logits = scale * want
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert np.max(np.abs(out["probabilities"] - softmax / softmax.sum(axis=1, keepdims=True))) < 1e-3


def test_heads_report_their_own_name_prompts_and_threshold(zeroshot_repository: ZeroShotRepository) -> None:
    repo = ModelRepository(zeroshot_repository.root)
    disturbing = repo.get_installed("clip_zeroshot_disturbing")
    assert disturbing.task == "disturbing_classification"
    assert disturbing.meta.description.startswith("CLIP zero-shot: ")
    params = disturbing.meta.params
    assert params["reported_as"] == "CLIP zero-shot" and params["format"] == "clip_zeroshot"
    assert disturbing.meta.labels == ("disturbing", "not_disturbing") and params["positive_labels"] == ["disturbing"]
    assert params["threshold"] == 0.5 and len(params["prompts"]["disturbing"]) >= 5
    assert params["image_model"] == f"{CLIP}_image" and params["text_model"] == f"{CLIP}_text"
    assert repo.get_installed("clip_zeroshot_meme").task == "meme_classification"
    tags = repo.get_installed("clip_zeroshot_tags")
    assert tags.task == "image_tagging" and len(tags.meta.labels) > 100 and "dog" in tags.meta.labels
    assert (tags.path / "1" / "model.onnx").stat().st_size < 1_000_000  # a tiny linear head
    assert stale(disturbing) is None


def _tiny_clip(seed: int):
    import open_clip

    torch.manual_seed(seed)
    return open_clip.model.CLIP(
        embed_dim=16,
        vision_cfg={"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
        text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
        quick_gelu=True,
    ).eval()


def _head_vectors(spec) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(spec.weights_path)).graph
    return next(numpy_helper.to_array(t) for t in graph.initializer if t.name == "class_vectors")


@ASYNC
async def test_a_head_follows_its_clip_and_keeps_edited_prompts(tmp_path: Path) -> None:
    from services.models.export.clip import export_clip

    export_clip(tmp_path, _tiny_clip(1), "clip_vit_b32", source="test", description="tiny", license="test")
    assert pull_zeroshot(tmp_path) == HEADS
    sidecar = tmp_path / "clip_zeroshot_meme" / "maam.json"
    data = json.loads(sidecar.read_text())
    data["params"]["prompts"] = {"meme": ["a cat meme", "a meme about work"], "not_meme": ["a photo of a cat"]}
    data["params"]["threshold"] = 0.7
    sidecar.write_text(json.dumps(data))

    new_clip = _tiny_clip(2)  # the CLIP is replaced by other weights
    export_clip(tmp_path, new_clip, "clip_vit_b32", source="test", description="tiny", license="test")
    spec = ModelRepository(tmp_path).get_installed("clip_zeroshot_meme")
    assert "rebuild it: `maam models pull clip_zeroshot`" in (stale(spec) or "")
    backend = onnx_backend(tmp_path)
    try:
        assert build_zeroshot(spec, backend) is None  # a stale head is not served
    finally:
        await backend.close()

    assert set(rebuild_stale(tmp_path)) == set(HEADS)
    spec = ModelRepository(tmp_path).get_installed("clip_zeroshot_meme")
    assert stale(spec) is None and spec.meta.params["threshold"] == 0.7  # the edits survive
    assert spec.meta.labels == ("meme", "not_meme")
    want = torch_text_means(new_clip, spec.meta.params["prompts"]).T
    assert np.max(np.abs(_head_vectors(spec) - want)) < 1e-5


def test_pull_without_clip_names_the_clip_pull(tmp_path: Path) -> None:
    with pytest.raises(ModelsError, match=r"maam models pull clip_vit_b32"):
        pull(tmp_path, "clip_zeroshot")
