"""NDD settings: the `ndd` section of the shared root, MAAM_NDD__* (data dir and media limits come from the
root's MAAM_DATA_DIR and MAAM_MEDIA__*)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from services.common.settings import NddClientSettings, Settings


class NddSettings(NddClientSettings):
    # The port `maam serve ndd` and `maam up` use without --port.
    port: int = 8008
    # host:port of the annotation gRPC service for the deep descriptor; empty disables it.
    annotation_url: str = ""
    # Embedding model the annotation service should use (empty: its default for the task).
    annotation_model: str = ""
    annotation_timeout_s: float = 30.0
    # Indexes switch from exact (Flat) to HNSW above this many vectors.
    flat_max_vectors: int = 200_000
    # HNSW graph degree and build breadth: every indexed image inserts its 81 window vectors, so insertion is
    # most of indexing at 100k images; 16 / 40 insert in 0.52x the time of 32 / 80 at 2 M vectors, shortlist
    # recall 0.760 vs 0.767 (docs/ndd.md, "HNSW parameters").
    hnsw_m: int = Field(16, ge=4, le=128)
    hnsw_ef_construction: int = Field(40, ge=8, le=1024)
    # HNSW search breadth, and the neighbours each query vector asks for (a query has ~22 vectors).
    hnsw_ef_search: int = Field(128, ge=8, le=4096)
    # Jobs waiting beyond this are refused with 503 (the worker drains the queue in order).
    job_queue_size: int = 64
    # Jobs kept for GET /jobs/{id} after they finish.
    jobs_kept: int = 1000
    # On SIGTERM, accepted indexing jobs get this long to finish (and be saved) before they are cancelled.
    shutdown_grace_s: float = 20.0
    max_upload_mb: int = 256
    # The whole body of one request that takes files (every file of an upload job), counted while it streams
    # in: past it 413 before the rest is read. Other bodies (JSON) get 1 KiB per item a job may hold, 1 MiB at least.
    max_body_mb: int = Field(512, ge=1)
    max_items_per_job: int = 1000
    # Video sampling: one frame per this many seconds, plus the first frame after each shot cut.
    video_frame_interval_s: float = 1.0
    # L1 distance (0-2) between the colour histograms of frames 0.25 s apart that declares a shot cut.
    shot_cut_threshold: float = 0.6
    max_video_frames: int = 3600
    # Items whose parsed descriptors stay in memory for re-scoring (~70 KB each for images).
    feature_cache_items: int = 2048


class NddServiceSettings(Settings):
    ndd: NddSettings = Field(default_factory=NddSettings)


@lru_cache
def get_ndd_settings() -> NddSettings:
    return NddServiceSettings().ndd
