"""Graceful shutdown: in-flight work finishes within the grace period, the rest is cancelled and
cleans up; a real uvicorn process answers an open request after SIGTERM and then exits."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from services.common.shutdown import GracefulShutdown
from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, wait_until


async def test_drain_waits_for_quick_work_and_cancels_slow_work_which_cleans_up() -> None:
    shutdown = GracefulShutdown(grace_s=0.2)
    released: list[str] = []
    quick_may_finish = asyncio.Event()

    async def quick() -> str:
        await quick_may_finish.wait()
        return "done"

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            released.append("outbox row 7")  # what a worker does with its claim when cancelled

    quick_task = shutdown.spawn(quick())
    stuck_task = shutdown.spawn(stuck())
    assert shutdown.in_flight == 2 and not shutdown.requested
    asyncio.get_running_loop().call_later(0.01, quick_may_finish.set)
    cancelled = await shutdown.drain()
    assert cancelled == 1
    assert quick_task.result() == "done"
    assert stuck_task.cancelled() and released == ["outbox row 7"]
    assert shutdown.requested and shutdown.in_flight == 0


async def test_sigterm_sets_stopping() -> None:
    shutdown = GracefulShutdown()
    shutdown.install([signal.SIGTERM])
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(shutdown.wait(), 5)
    finally:
        shutdown.uninstall()
    assert shutdown.requested


APP = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from fastapi import FastAPI
    from services.common.logging import configure_logging
    from services.common.shutdown import serve_http

    gate = Path(sys.argv[2])
    app = FastAPI()

    @app.get("/slow")
    async def slow():
        Path(sys.argv[3]).touch()          # tells the test the request is in flight
        while not gate.exists():           # released by the test after it sent SIGTERM
            await asyncio.sleep(0.01)
        return {"finished": True}

    @app.get("/healthz")
    async def healthz():
        return {"ok": True}

    configure_logging("shutdown-test")
    serve_http(app, "127.0.0.1", int(sys.argv[1]), grace_s=20)
    """
)


def test_sigterm_lets_an_open_http_request_finish_then_exits(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(APP)
    gate, started = tmp_path / "gate", tmp_path / "started"
    port = free_port()
    server = ServiceProcess([sys.executable, str(script), str(port), str(gate), str(started)], env=child_env())
    base = f"http://127.0.0.1:{port}"

    healthy = http_healthy(base, timeout=1)

    try:
        server.wait_ready(healthy, timeout=60, what="test app")
        result: dict = {}
        client = threading.Thread(target=lambda: result.update(r=httpx.get(f"{base}/slow", timeout=30)))
        client.start()
        wait_until(started.exists, timeout=10, what="the slow request to start")
        server.proc.send_signal(signal.SIGTERM)
        # While draining, the server takes no new connections...
        wait_until(lambda: not healthy(), timeout=10, what="the server to stop accepting")
        assert server.alive()
        # ...and the open request still completes once its work is done.
        gate.touch()
        client.join(timeout=20)
        assert result["r"].status_code == 200 and result["r"].json() == {"finished": True}
        server.proc.wait(timeout=20)
        # uvicorn re-raises the signal it handled once it is done, as the shell expects.
        assert server.proc.returncode in (0, -signal.SIGTERM), server.output
        assert "Application shutdown complete" in server.output
        assert '"service": "shutdown-test"' in server.output  # uvicorn logs went through our JSON logging
        assert "color_message" not in server.output
    finally:
        gate.touch()
        server.stop()


@pytest.mark.parametrize("grace", [0.0])
async def test_drain_with_nothing_in_flight_returns_at_once(grace: float) -> None:
    shutdown = GracefulShutdown()
    assert await shutdown.drain(grace) == 0
