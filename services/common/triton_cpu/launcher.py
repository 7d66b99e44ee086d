"""Creates PyTriton's own virtual environment and starts `pytriton_server.py` in it.

PyTriton needs numpy<2 while the project runs numpy 2, so the server gets a venv of its own
(under the data directory), created once and reused. With a pyenv (or any shared-library) Python,
the bundled tritonserver's Python backend stub needs `libpython` on LD_LIBRARY_PATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REQUIREMENTS = ("nvidia-pytriton==0.7.0", "numpy<2", "onnxruntime>=1.20")
SERVER_SCRIPT = Path(__file__).with_name("pytriton_server.py")
STAMP = ".maam-requirements"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, *, quiet: bool = True) -> Path:
    """Creates or updates the PyTriton venv; a no-op when its requirements already match."""
    stamp = venv / STAMP
    wanted = "\n".join(REQUIREMENTS)
    if venv_python(venv).exists() and stamp.is_file() and stamp.read_text() == wanted:
        return venv_python(venv)
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("-q")
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    stamp.write_text(wanted)
    return venv_python(venv)


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def server_command(
    venv: Path,
    repository: Path,
    *,
    host: str = "127.0.0.1",
    grpc_port: int = 8001,
    http_port: int = 8010,
    metrics_port: int = 8012,
    threads: int = 0,
) -> list[str]:
    return [
        str(venv_python(venv)),
        str(SERVER_SCRIPT),
        "--repository",
        str(Path(repository).resolve()),
        "--host",
        host,
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(http_port),
        "--metrics-port",
        str(metrics_port),
        "--threads",
        str(threads),
    ]
