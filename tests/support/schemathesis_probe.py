"""A bounded, reproducible schemathesis run against a live HTTP service (issue 20): a few examples per
operation, a fixed seed, deterministic generation, positive and negative data, and one check, that no answer
is a server error. Also a uvicorn server in a thread for apps the tests build."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from tests.support.processes import free_port, wait_until

SEED = "20"
EXAMPLES = "3"


class ThreadedServer:
    """`app` served by uvicorn on a free loopback port, its lifespan included; `stop()` ends it."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), timeout=60, what="the server")
        if not self.server.started:
            raise RuntimeError("the server did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def run_schemathesis(url: str, workdir: Path, *extra: str, timeout: int = 900) -> str:
    """Runs schemathesis on `url`/openapi.json; fails with its report unless no server error was found."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/openapi.json",
        "--checks", "not_a_server_error", "--max-examples", EXAMPLES, "--seed", SEED, "--generation-deterministic",
        "--workers", "1", "--phases", "examples,coverage,fuzzing", "--request-timeout", "60", "--no-shrink",
        *extra,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    output = result.stdout + result.stderr
    print(next((line.strip() for line in output.splitlines() if re.match(r"\s*\d+ generated", line)), ""))
    assert result.returncode == 0, output[-12000:]
    assert "No issues found" in output or "passed" in output, output[-4000:]
    return output
