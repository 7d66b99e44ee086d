"""Thread pools of native libraries, sized for a service: requests run concurrently, so each
library call gets few threads of its own (see `InferenceSettings.opencv_threads`, `onnx_spin_wait`)."""

from __future__ import annotations

from services.common.settings import Settings


def limit_native_threads(settings: Settings) -> None:
    """Applies the settings to OpenCV's process-wide thread pool (ONNX Runtime's threads are set
    per session by the ONNX backend)."""
    if settings.inference.opencv_threads > 0:
        import cv2

        cv2.setNumThreads(settings.inference.opencv_threads)
