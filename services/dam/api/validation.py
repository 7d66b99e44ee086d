"""Types that refuse malformed input at the API layer, as a 422 that says what is wrong, before it can reach
PostgreSQL (which refuses NUL in text and integers beyond bigint with an error, i.e. a 500) or Python's date
arithmetic. The 422 body is the one error envelope (services/common/http_errors.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import annotated_types as at
import numpy as np
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, AllowInfNan

MAX_DB_ID = 2**63 - 1  # PostgreSQL bigint
# A day is added to an inclusive upper date bound; the last date that still works.
MAX_DATE = date(9999, 12, 30)
MAX_PAGE = 10_000
KiB = 1024
MiB = 1024 * KiB
# Bodies of the JSON routes (the largest: 10,000 sha256 digests or asset ids, well under 1 MiB).
DEFAULT_MAX_BODY = 1 * MiB
# Multipart overhead allowed over a file cap (part headers, small form fields).
MULTIPART_SLACK = 256 * KiB


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\x00) characters")
    return value


# Text that can be stored and queried: no NUL characters (PostgreSQL text cannot hold them).
SafeStr = Annotated[str, AfterValidator(_no_nul)]
# A row id: a bigint primary key.
DbId = Annotated[int, at.Ge(1), at.Le(MAX_DB_ID)]
# A calendar date a day can still be added to.
BoundedDate = Annotated[date, at.Le(MAX_DATE)]
# A page number whose offset stays far inside bigint.
PageNumber = Annotated[int, at.Ge(1), at.Le(MAX_PAGE)]
Sha256Hex = Annotated[str, at.Len(64, 64), AfterValidator(_no_nul)]


def _as_real(value: float) -> float:
    # PostgreSQL `real` refuses a nonzero double that rounds to zero in single precision ("underflow", a 500):
    # such a threshold is zero for every purpose, so it is stored as 0.
    return 0.0 if value and not np.float32(value) else value


# A cosine threshold stored in a `real` column: finite, in [-1, 1], never below single precision's range.
StoredSimilarity = Annotated[float, at.Ge(-1.0), at.Le(1.0), AllowInfNan(False), AfterValidator(_as_real)]


def refuse_nul(value: str, what: str) -> str:
    """For text parsed by hand (the streamed upload's fields): the same rule as `SafeStr`."""
    if "\x00" in value:
        raise HTTPException(422, f"{what} must not contain NUL (\\x00) characters")
    return value


def check_db_id(value: int, name: str) -> int:
    """For ids parsed by hand (comma lists, multipart fields): the same bound as `DbId`."""
    if not 1 <= value <= MAX_DB_ID:
        raise RequestValidationError([{"type": "less_than_equal", "loc": ("query", name),
                                       "msg": f"ids must be between 1 and {MAX_DB_ID}", "input": str(value)}])
    return value
