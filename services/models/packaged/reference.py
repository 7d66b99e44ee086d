"""The source framework run on the same input as the converted graph: TFJS models in Node.js on the
pure-JS backend, TFLite models with TensorFlow's interpreter in the conversion venv."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from services.models.errors import ModelsError

HERE = Path(__file__).parent


def _failure(done: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith(("=", "Hi, looks"))]
    return lines[-1] if lines else f"exit {done.returncode}"


def run_tfjs(
    node: str, modules: Path, model_json: Path, feeds: Mapping[str, np.ndarray], outputs: Sequence[str],
    *, kind: str = "graph",
) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="maam-tfjs-") as tmp:
        inputs: dict[str, dict[str, object]] = {}
        for i, (name, value) in enumerate(feeds.items()):
            path = f"{tmp}/in{i}.bin"
            np.ascontiguousarray(value, np.float32).tofile(path)
            inputs[name] = {"file": path, "shape": list(value.shape)}
        spec = {"model": str(model_json), "kind": kind, "outputs": list(outputs), "out_dir": f"{tmp}/out",
                "inputs": inputs}
        Path(f"{tmp}/spec.json").write_text(json.dumps(spec))
        env = {**os.environ, "NODE_PATH": str(modules)}
        done = subprocess.run([node, str(HERE / "js" / "run_tfjs.js"), f"{tmp}/spec.json"],
                              capture_output=True, text=True, env=env, timeout=1800)
        if done.returncode != 0:
            raise ModelsError(f"TensorFlow.js could not run {model_json.name}: {_failure(done)}")
        shapes = json.loads(Path(f"{tmp}/out/shapes.json").read_text())
        return [np.fromfile(f"{tmp}/out/{i}.bin", np.float32).reshape(s) for i, s in enumerate(shapes)]


def run_tflite(python: Path, model: Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="maam-tflite-") as tmp:
        np.savez(f"{tmp}/in.npz", **{k: np.asarray(v) for k, v in feeds.items()})
        done = subprocess.run([str(python), str(HERE / "run_tflite.py"), str(model), f"{tmp}/in.npz", f"{tmp}/out.npz"],
                              capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise ModelsError(f"TensorFlow Lite could not run {model.name}: {_failure(done)}")
        with np.load(f"{tmp}/out.npz") as out:
            return {k: out[k] for k in out.files}
