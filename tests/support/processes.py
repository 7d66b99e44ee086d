"""Starting project processes from tests: free ports, `maam` commands, waiting for readiness."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def http_healthy(base: str, timeout: float = 2.0) -> Callable[[], bool]:
    """A readiness probe (for ServiceProcess.wait_ready / wait_until): GET base/healthz answers 200."""

    def healthy() -> bool:
        import httpx

        try:
            return httpx.get(f"{base}/healthz", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    return healthy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def maam(*args: str) -> list[str]:
    """The `maam` CLI of this checkout, whatever venv runs the tests."""
    return [sys.executable, "-m", "services.cli", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    # The annotation service's /metrics port (9464 by default) would clash between concurrent test
    # processes; tests that scrape it pass a free port.
    env.setdefault("MAAM_ANNOTATION__METRICS_PORT", "0")
    env.update(extra)
    return env


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what or predicate}")


class ServiceProcess:
    """A child process whose output goes to a temp file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.command = command
        self._log = tempfile.NamedTemporaryFile(prefix="maam-proc-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env or child_env(),
            cwd=cwd or REPO_ROOT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.command} exited with {self.proc.returncode}:\n{self.output[-4000:]}")
            return predicate()

        try:
            wait_until(ready, timeout, interval=0.2, what=what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.output[-4000:]}") from exc

    def stop(self, timeout: float = 20) -> int:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)
