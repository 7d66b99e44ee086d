"""The GPU integration suite's server: a real Triton named by MAAM_INFERENCE__TRITON_URL (a GPU runner, with
the repository in MAAM_MODEL_REPOSITORY), else the PyTriton CPU Triton of the ordinary test run
serving the test repository. The client code path is the same; only the server differs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.model_repository import ModelRepository
from tests.gpu import support
from tests.support.processes import REPO_ROOT
from tests.support.test_models import TEST_MODELS


@dataclass(frozen=True)
class TritonTarget:
    url: str
    repository: ModelRepository
    # Printed with the results: which server the numbers are from.
    description: str
    external: bool


def _external_url() -> str | None:
    return os.environ.get("MAAM_INFERENCE__TRITON_URL") or None


def _external_repository() -> Path:
    return Path(os.environ.get("MAAM_MODEL_REPOSITORY") or REPO_ROOT / "triton_models")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per installed model, known at collection (the CI repository is the test models)."""
    if "model_name" not in metafunc.fixturenames:
        return
    if _external_url():
        # Models with a built-in runtime (OpenCV Haar) never run on Triton.
        names = [m.name for m in ModelRepository(_external_repository()).installed() if m.triton]
    else:
        names = list(TEST_MODELS)
    metafunc.parametrize("model_name", names or [None], ids=[n or "no-models" for n in names or [None]])


@pytest.fixture(scope="session")
def triton_target(request: pytest.FixtureRequest) -> TritonTarget:
    url = _external_url()
    if url:
        repository = ModelRepository(_external_repository())
        return TritonTarget(url, repository, f"Triton at {url} (MAAM_INFERENCE__TRITON_URL)", external=True)
    test_repository: Path = request.getfixturevalue("test_repository")
    cpu_url: str = request.getfixturevalue("triton_url")
    return TritonTarget(
        cpu_url,
        ModelRepository(test_repository),
        f"PyTriton CPU Triton at {cpu_url} (no MAAM_INFERENCE__TRITON_URL: the CI run)",
        external=False,
    )


@pytest.fixture
def model_spec(model_name: str | None, triton_target: TritonTarget):
    if model_name is None:
        pytest.skip(
            f"no model is installed in {triton_target.repository.root}: "
            "`maam models install-shipped` (and `maam models pull NAME`) install them"
        )
    return triton_target.repository.get_installed(model_name)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if support.REPORT:
        terminalreporter.section("GPU suite throughput")
        for target in sorted(support.TARGETS):
            terminalreporter.write_line(f"server: {target}")
        for line in support.REPORT:
            terminalreporter.write_line(line)
