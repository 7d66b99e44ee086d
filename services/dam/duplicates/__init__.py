"""Near-duplicates inside the library: the DAM registers its images and videos with the NDD service
(sync.py, through the ndd_entries outbox), stores the pairs NDD finds, and shows them (queries.py, routes.py)."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.service_auth import key_headers
from services.dam.blobstore import BlobStore
from services.dam.core.config import DamOptions
from services.dam.duplicates.client import NddClient
from services.dam.duplicates.sync import NddSync


def create_sync(sessions: async_sessionmaker[AsyncSession], blobs: BlobStore, options: DamOptions,
                api_key: SecretStr | None = None) -> NddSync | None:
    """The sync loop when NDD is configured (MAAM_DAM__NDD_URL), else None; `api_key`: MAAM_NDD__API_KEY."""
    if not options.ndd_url:
        return None
    return NddSync(sessions, NddClient(options.ndd_url, options.ndd_timeout_s, key_headers(api_key)), blobs, options)
