"""The model adapters: each turns one repository model's inputs and outputs into plain results
(models/types.py). Which adapter builds which model is FORMATS (models/formats.py)."""

from __future__ import annotations

from services.annotation.models.base import AdapterError, TaskModel

__all__ = ["AdapterError", "TaskModel"]
