"""Runs the original nsfwjs model in TensorFlow.js (Node.js, pure-JS CPU backend, npm packages pinned below)
on the same inputs as the torch teacher, so the conversion is checked against the original's own outputs."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from services.models.errors import ModelsError
from services.models.research.indistill.nsfwjs_teacher import LABELS, MODEL_DIR, PACKAGE, VERSION
from services.models.research.npm_package import fetch_npm_package, install_npm_packages

TFJS = ["@tensorflow/tfjs-core@4.22.0", "@tensorflow/tfjs-backend-cpu@4.22.0", "@tensorflow/tfjs-layers@4.22.0"]
SCRIPT = Path(__file__).with_name("tfjs_reference.cjs")


def tfjs_probabilities(images_nchw: np.ndarray, cache: Path | None = None) -> np.ndarray:
    """[N, 5] probabilities of nsfwjs's MobileNetV2 in TensorFlow.js for RGB [0, 1] images [N, 3, 224, 224]."""
    node = shutil.which("node")
    if node is None:
        raise ModelsError("the TensorFlow.js reference needs Node.js (`node`) on the PATH")
    modules = install_npm_packages(TFJS, "tfjs-4.22.0", cache)
    model_dir = fetch_npm_package(PACKAGE, VERSION, cache) / MODEL_DIR
    nhwc = np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1), np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.f32", Path(tmp) / "out.f32"
        source.write_bytes(nhwc.tobytes())
        done = subprocess.run(
            [node, str(SCRIPT), str(model_dir), str(source), str(len(nhwc)), str(target)],
            capture_output=True, text=True, timeout=900, check=False, env={"NODE_PATH": str(modules), "PATH": ""},
        )
        if done.returncode != 0:
            raise ModelsError(f"TensorFlow.js failed: {done.stderr.strip()[-500:]}")
        return np.frombuffer(target.read_bytes(), np.float32).reshape(len(nhwc), len(LABELS))
