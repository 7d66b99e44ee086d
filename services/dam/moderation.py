"""Moderation verdicts: an owner's or admin's `safe` / `sensitive` on an asset overrides the models' NSFW and
disturbing-content flags wherever they are used (search documents, facets, card blur); `None` leaves the
models' word."""

from __future__ import annotations

from typing import Any, Literal

Verdict = Literal["safe", "sensitive"]
VERDICTS = ("safe", "sensitive")


def apply_verdict(fields: dict[str, Any], verdict: str | None) -> dict[str, Any]:
    """The flags of `doc_fields` with the verdict applied: safe clears both, sensitive sets NSFW."""
    if verdict == "safe":
        return fields | {"nsfw": False, "disturbing": False}
    if verdict == "sensitive":
        return fields | {"nsfw": True}
    return fields

