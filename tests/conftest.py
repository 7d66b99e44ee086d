"""Fixtures every test package may use: the tiny test model repository and a real CPU Triton."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cpu_triton import cpu_triton
from tests.support.research_repository import research_repository, research_triton_url  # noqa: F401 (fixtures)
from tests.support.test_models import TEST_MODELS, write_test_repository
from tests.support.zeroshot_repository import zeroshot_repository, zeroshot_triton_url  # noqa: F401 (fixtures)


@pytest.fixture(scope="session")
def test_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository holding only the `test_*` models."""
    return write_test_repository(tmp_path_factory.mktemp("test_models"))


@pytest.fixture(scope="session")
def triton_url(test_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real tritonserver (PyTriton, CPU) serving the test repository; yields host:port."""
    with cpu_triton(test_repository, TEST_MODELS, what="tritonserver", timeout=240) as url:
        yield url
