"""A real tritonserver (PyTriton on the CPU, `maam triton serve-cpu`) for tests: one way to start it, wait until
the named models are ready, and stop it.

On a loaded 2-core CI machine the bundled tritonserver has been seen to die while PyTriton loads one of many
models (the Python backend stub reports "Non-graceful termination detected" and PyTriton's `load_model` gets
HTTPConnectionClosed). A server that *exits* before it is ready is started once more, with the first
attempt's output printed so the crash stays visible; a server that is alive but never ready, or that dies
twice, fails the fixture as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.support.processes import ServiceProcess, child_env, free_port, maam

ATTEMPTS = 2
# PyTriton's graceful stop takes ~13 s per server (six of them in a run); a test server has nothing to save.
STOP_GRACE_S = 3.0
SHM = Path("/dev/shm")


def _stop(server: ServiceProcess) -> None:
    """Stops the server, killing it after a short grace, and removes the shared-memory segments a killed
    PyTriton leaves behind (named after its pid; 16 x 4 MiB for the test models)."""
    server.stop(STOP_GRACE_S)
    for leftover in SHM.glob(f"pytrtion{server.proc.pid}-*"):
        leftover.unlink(missing_ok=True)


def triton_ready(url: str, models: Iterable[str]) -> bool:
    import tritonclient.grpc as triton_grpc
    from tritonclient.utils import InferenceServerException

    try:
        client = triton_grpc.InferenceServerClient(url)
        return client.is_server_ready() and all(client.is_model_ready(m) for m in models)
    except InferenceServerException:
        return False


@contextlib.contextmanager
def cpu_triton(repository: Path, models: Iterable[str], *, what: str, timeout: float = 300) -> Iterator[str]:
    """Serves `repository` until the block ends; yields the gRPC address (host:port)."""
    models = tuple(models)
    for attempt in range(1, ATTEMPTS + 1):
        grpc_port = free_port()
        server = ServiceProcess(
            maam("triton", "serve-cpu", "--repository", str(repository), "--grpc-port", str(grpc_port),
                 "--http-port", str(free_port()), "--metrics-port", str(free_port()), "--threads", "1"),
            env=child_env(),
        )
        url = f"127.0.0.1:{grpc_port}"
        try:
            server.wait_ready(lambda url=url: triton_ready(url, models), timeout=timeout, what=what)
        except RuntimeError:  # the process exited before it was ready
            _stop(server)
            if attempt == ATTEMPTS:
                raise
            print(f"{what}: tritonserver exited while loading (attempt {attempt}); starting it again:\n"
                  f"{server.output[-3000:]}")
            continue
        except BaseException:
            _stop(server)
            raise
        try:
            yield url
        finally:
            _stop(server)
        return
