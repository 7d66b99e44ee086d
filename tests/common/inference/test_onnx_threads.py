"""The thread settings of the in-process backend: ONNX Runtime's busy-waiting is off unless asked
for, and the OpenCV pool is sized by the settings."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from services.common.inference import create_backend
from services.common.inference.onnx_backend import OnnxBackend
from services.common.model_repository import ModelRepository
from services.common.native_threads import limit_native_threads
from services.common.settings import InferenceSettings, Settings

SPIN_KEYS = ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning")


async def _spinning(backend: OnnxBackend) -> list[str]:
    options = (await backend._session("test_image_embedder")).session.get_session_options()
    return [options.get_session_config_entry(key) for key in SPIN_KEYS]


@pytest.mark.parametrize(("spin_wait", "expected"), [(False, "0"), (True, "1")])
async def test_spin_wait_setting_reaches_the_sessions(test_repository: Path, spin_wait: bool, expected: str) -> None:
    settings = Settings(model_repository=test_repository, inference=InferenceSettings(onnx_spin_wait=spin_wait))
    backend = create_backend(settings, ModelRepository(test_repository))
    assert isinstance(backend, OnnxBackend)
    try:
        assert await _spinning(backend) == [expected, expected]
    finally:
        await backend.close()


async def test_sessions_do_not_spin_unless_asked(test_repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing configured (no setting, no environment variable), the sessions a service creates say
    "no spinning" explicitly: ONNX Runtime spins when the entries are absent."""
    import os

    for name in [n for n in os.environ if "SPIN_WAIT" in n.upper()]:
        monkeypatch.delenv(name)
    repository = ModelRepository(test_repository)
    for backend in (create_backend(Settings(model_repository=test_repository), repository), OnnxBackend(repository)):
        assert isinstance(backend, OnnxBackend)
        try:
            assert await _spinning(backend) == ["0", "0"]
        finally:
            await backend.close()


@pytest.mark.parametrize("threads", [1, 2])
async def test_intra_op_threads_reach_the_sessions(test_repository: Path, threads: int) -> None:
    settings = Settings(model_repository=test_repository, inference=InferenceSettings(onnx_intra_op_threads=threads))
    backend = create_backend(settings, ModelRepository(test_repository))
    assert isinstance(backend, OnnxBackend)
    try:
        options = (await backend._session("test_image_embedder")).session.get_session_options()
        assert options.intra_op_num_threads == threads
    finally:
        await backend.close()


def test_opencv_threads_follow_the_settings() -> None:
    before = cv2.getNumThreads()
    try:
        limit_native_threads(Settings(inference=InferenceSettings(opencv_threads=1)))
        assert cv2.getNumThreads() == 1
        cv2.setNumThreads(3)
        # 0 leaves OpenCV's own choice alone
        limit_native_threads(Settings(inference=InferenceSettings(opencv_threads=0)))
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)
