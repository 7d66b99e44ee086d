"""The tools a conversion needs, each installed once into the cache with its own client:

- a virtualenv with TensorFlow and tf2onnx, pinned to a set that converts the packaged TFJS and
  TFLite graphs (TensorFlow 2.15 needs numpy < 2, so it cannot share the project's venv);
- the pure-JS TensorFlow.js runtime (`npm install`), the reference a converted TFJS graph is checked
  against. Its CPU backend needs no native binary, so it installs from the npm registry alone.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

from services.models.errors import ModelsError

# A set that converts every packaged graph here (measured: nanodet, faceres, blazeface, MediaPipe
# short-range, nsfwjs; the two TFJS topology fixes in `tfjs.py` still apply).
CONVERTER_REQUIREMENTS = (
    "tensorflow-cpu==2.15.1",
    "tf2onnx==1.16.1",
    "numpy==1.26.4",
    "protobuf==3.20.3",
    "onnx==1.17.0",
)
TFJS_PACKAGES = (
    "@tensorflow/tfjs-core@4.22.0",
    "@tensorflow/tfjs-converter@4.22.0",
    "@tensorflow/tfjs-backend-cpu@4.22.0",
    "@tensorflow/tfjs-layers@4.22.0",
)
STAMP = ".maam-requirements"


def _key(items: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:12]


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError as exc:
        raise ModelsError(f"{what}: `{command[0]}` is not installed") from exc
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
        raise ModelsError(f"{what} failed: {lines[-1] if lines else f'exit {done.returncode}'}")


def converter_python(cache: Path) -> Path:
    """The conversion venv's python, created now when missing or when its pins changed."""
    venv = Path(cache) / "toolchain" / f"tf2onnx-{_key(CONVERTER_REQUIREMENTS)}"
    python = venv / "bin" / "python"
    wanted = "\n".join(CONVERTER_REQUIREMENTS)
    stamp = venv / STAMP
    # A venv cannot be built elsewhere and renamed (its scripts name their own path), so two installs
    # sharing the cache (two checkouts, CI beside a developer) take turns instead of deleting each
    # other's half-built tree.
    venv.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{venv}.lock"):
        if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", str(venv)], "creating the conversion venv")
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *CONVERTER_REQUIREMENTS],
             f"installing {' '.join(CONVERTER_REQUIREMENTS)} into {venv}")
        stamp.write_text(wanted)
    return python


def tfjs_modules(cache: Path, *, npm: str = "npm") -> Path:
    """A node_modules folder holding the pure-JS TensorFlow.js runtime."""
    prefix = Path(cache) / "toolchain" / f"tfjs-{_key(TFJS_PACKAGES)}"
    modules = prefix / "node_modules"
    wanted = "\n".join(TFJS_PACKAGES)
    stamp = prefix / STAMP
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{prefix}.lock"):
        if modules.is_dir() and stamp.is_file() and stamp.read_text() == wanted:
            return modules
        shutil.rmtree(prefix, ignore_errors=True)
        prefix.mkdir(parents=True)
        _run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix), *TFJS_PACKAGES],
             f"installing {' '.join(TFJS_PACKAGES)}")
        stamp.write_text(wanted)
    return modules


def node() -> str:
    path = shutil.which("node")
    if path is None:
        raise ModelsError("Node.js is not installed (the TFJS reference runs in it): apt-get install nodejs npm")
    return path
