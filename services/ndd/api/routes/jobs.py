"""Indexing job reports."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException

from services.ndd.api.deps import Service

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}")
async def get_job(service: Service, job_id: str) -> dict[str, Any]:
    report = await asyncio.to_thread(service.jobs.report, job_id)
    if report is None:
        raise HTTPException(404, f"job {job_id!r} does not exist (the last {service.ndd.jobs_kept} finished jobs "
                                 "are kept)")
    return report
