"""The research models' tests: torch from the [export] extra, one torch thread (the machine's cores are shared;
more threads only contend), tiny configurations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

torch = pytest.importorskip("torch", reason="the research models need torch from the [export] extra")


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
