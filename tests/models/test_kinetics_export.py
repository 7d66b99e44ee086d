"""The Kinetics-400 action model export (`maam models pull kinetics_r2plus1d_18`) on the full-size
R(2+1)D-18 with random weights (no network): labels and preprocessing come from torchvision's
Weights enum, the service's NumPy preprocessing equals torchvision's own transform on a real video
made from skimage photos, and ONNX Runtime's logits equal torch's on that clip."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export tests need torch from the [export] extra (not installed)")

from skimage import data as skdata  # noqa: E402

from services.annotation.models.video_clip import clip_tensor  # noqa: E402
from services.annotation.video import Sampling, decode_video  # noqa: E402
from services.common.model_repository import ModelRepository  # noqa: E402
from services.models.export.common import onnx_outputs  # noqa: E402
from tests.support.media import make_video  # noqa: E402
from tests.support.zeroshot_repository import KINETICS, ZeroShotRepository  # noqa: E402


@pytest.fixture(scope="module")
def exported(zeroshot_repository: ZeroShotRepository):
    repo = zeroshot_repository
    return repo.root, repo.kinetics, repo.kinetics_weights


def _photo_video_frames() -> list[np.ndarray]:
    """A real H.264 video (astronaut then coffee, 320x240, slowly panning), decoded back by PyAV."""
    import cv2

    frames = []
    for photo in (skdata.astronaut(), skdata.coffee()):
        base = cv2.resize(photo, (360, 270))
        frames += [np.ascontiguousarray(base[k : k + 240, 2 * k : 2 * k + 320]) for k in range(12)]
    return frames


def test_sidecar_reads_labels_and_preprocessing_from_the_torchvision_weights(exported) -> None:
    root, model, weights = exported
    spec = ModelRepository(root).get_installed(KINETICS)
    transform = weights.transforms()
    params = spec.meta.params
    assert spec.task == "video_action_recognition" and params["format"] == "torchvision_video"
    assert spec.meta.labels == tuple(weights.meta["categories"]) and len(spec.meta.labels) == 400
    assert params["resize_size"] == list(transform.resize_size) == [128, 171]
    assert params["crop_size"] == list(transform.crop_size) == [112, 112]
    assert params["mean"] == list(transform.mean) and params["std"] == list(transform.std)
    assert params["clip_len"] == 16  # from the weights' docs ("clip_len=16")
    assert [list(t.dims) for t in spec.config.input] == [[3, 16, 112, 112]]
    assert [list(t.dims) for t in spec.config.output] == [[400]]
    clip = np.random.default_rng(1).standard_normal((2, 3, 16, 112, 112)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(clip)).numpy()
    got = onnx_outputs(spec.weights_path, {"clips": clip})[0]
    assert got.shape == (2, 400) and np.std(want) > 0
    assert np.max(np.abs(got - want)) <= 1e-4 * max(1.0, float(np.max(np.abs(want))))


def test_preprocessing_equals_torchvision_transform_on_a_real_video(exported) -> None:
    root, model, weights = exported
    params = ModelRepository(root).get_installed(KINETICS).meta.params
    decoded = decode_video(make_video(_photo_video_frames(), fps=8), Sampling(clip_seconds=2.0, frames_per_clip=16))
    frames = decoded.clips[0].frames
    assert len(frames) == 16 and frames[0].shape == (192, 256, 3)  # the sampler's 256 side
    index = np.linspace(0, len(frames) - 1, 16).round().astype(int)
    clip = [frames[i] for i in index]

    ours = clip_tensor(clip, params)
    theirs = weights.transforms()(torch.from_numpy(np.stack(clip)).permute(0, 3, 1, 2)).numpy()
    assert ours.shape == theirs.shape == (3, 16, 112, 112)
    diff = np.abs(ours - theirs)
    # Equal up to float rounding; a pixel whose bilinear value sits on a .5 tie may round the other
    # way (one uint8 level, 1/255/std), in at most a few in 10^4 values.
    assert float(np.mean(diff > 1e-5)) < 1e-4
    assert float(diff.max()) <= 1.0 / 255 / min(params["std"]) + 1e-5

    logits = onnx_outputs(root / KINETICS / "1" / "model.onnx", {"clips": ours[None]})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(theirs[None])).numpy()
    assert logits.shape == (1, 400) and np.std(want) > 0
    assert np.max(np.abs(logits - want)) <= 1e-3 * max(1.0, float(np.max(np.abs(want)))) + 0.05 * float(diff.max())
