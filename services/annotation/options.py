"""Tuning of the annotation service beyond the shared settings (env prefix MAAM_ANNOTATION_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class AnnotationOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAAM_ANNOTATION_", extra="ignore")

    # One model run may take this long before it is reported as a DEADLINE_EXCEEDED ModelError.
    model_timeout_s: float = 120.0
    # Model runs in flight across all requests; more wait their turn (backpressure).
    max_concurrent_model_runs: int = 16
    # Images of one ImageAnnotationStreamBatch annotated at once; results waiting to be sent are
    # capped too, so a slow reader stalls the producers instead of filling memory.
    batch_parallelism: int = 4
    batch_queue_size: int = 32
    # Video sampling.
    keyframes_per_minute: float = 12.0
    max_keyframes: int = 64
    # Mean absolute difference of grey histograms (0..2) that counts as a shot change.
    shot_threshold: float = 0.5
    clip_seconds: float = 2.0
    max_clips: int = 16
    # Longer side of frames kept in memory for annotation.
    frame_max_side: int = 960
    # 3D.
    render_views: int = 4
    render_size: int = 320
    max_mesh_faces: int = 500_000
    # Face identities: an .npz with `names` and `vectors` (L2-normalised, from the face embedder).
    face_gallery: Path | None = None
    identity_threshold: float = 0.5
    # Blurred videos bigger than this are not returned inline (video_size still says how big).
    max_inline_video_mb: int = 64
