"""Fixtures of the model-provisioning tests: one repository with the shipped models installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from services.models.shipped import install_shipped

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="session")
def shipped_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp repository after `install_shipped` (MiniLM included when torch is installed)."""
    root = tmp_path_factory.mktemp("shipped")
    install_shipped(root)
    return root
