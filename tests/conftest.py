"""Fixtures every test package may use: the tiny test model repository and a real CPU Triton."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ServiceProcess, child_env, free_port, maam
from tests.support.research_repository import research_repository, research_triton_url  # noqa: F401 (fixtures)
from tests.support.test_models import TEST_MODELS, write_test_repository
from tests.support.zeroshot_repository import zeroshot_repository, zeroshot_triton_url  # noqa: F401 (fixtures)


@pytest.fixture(scope="session")
def test_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository holding only the `test_*` models."""
    return write_test_repository(tmp_path_factory.mktemp("test_models"))


def _triton_ready(url: str, models: tuple[str, ...]) -> bool:
    import tritonclient.grpc as triton_grpc
    from tritonclient.utils import InferenceServerException

    try:
        client = triton_grpc.InferenceServerClient(url)
        return client.is_server_ready() and all(client.is_model_ready(m) for m in models)
    except InferenceServerException:
        return False


@pytest.fixture(scope="session")
def triton_url(test_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real tritonserver (PyTriton, CPU) serving the test repository; yields host:port."""
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    command = maam(
        "triton", "serve-cpu",
        "--repository", str(test_repository),
        "--grpc-port", str(grpc_port),
        "--http-port", str(http_port),
        "--metrics-port", str(metrics_port),
    )
    server = ServiceProcess(command, env=child_env())
    url = f"127.0.0.1:{grpc_port}"
    try:
        server.wait_ready(lambda: _triton_ready(url, TEST_MODELS), timeout=240, what="tritonserver")
        yield url
    finally:
        server.stop()
