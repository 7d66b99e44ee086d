"""`maam serve annotation`: the Media Annotation Service on host:port until SIGINT/SIGTERM."""

from __future__ import annotations

from services.annotation.server import run

__all__ = ["run"]
