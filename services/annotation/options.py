"""The annotation service's settings: the shared root, its `annotation` section extended with the service's
own tuning (`MAAM_ANNOTATION__MODEL_TIMEOUT_S`, ...; the address, message cap and metrics port come from
services/common/settings.py)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from services.common.settings import AnnotationServiceSettings, Settings


class AnnotationOptions(AnnotationServiceSettings):
    # The service's CPU priority (nice, 0-19): annotation is background work, so on a machine it shares with
    # the DAM it takes the CPU that interactive requests leave (services/common/cpu_priority.py). 0 = as started.
    nice: int = Field(10, ge=0, le=19)
    # One model run may take this long before it is reported as a DEADLINE_EXCEEDED ModelError.
    model_timeout_s: float = 120.0
    # Model runs in flight across all requests; more wait their turn (backpressure).
    max_concurrent_model_runs: int = 64
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
    # Request bounds (services/annotation/limits.py): a request past one is INVALID_ARGUMENT before any work.
    max_views: int = Field(32, ge=1)
    # Per-request render budgets: views x render_size^2 pixels held at once, views x faces drawn.
    max_render_pixels: int = Field(4_000_000, ge=1)
    max_rendered_faces: int = Field(4_000_000, ge=1)
    max_boxes: int = Field(256, ge=0)
    max_models: int = Field(64, ge=1)
    max_batch_requests: int = Field(256, ge=1)
    max_text_chars: int = Field(10_000, ge=1)
    max_url_chars: int = Field(4096, ge=1)
    # Face identities: an .npz with `names` and `vectors` (L2-normalised, from the face embedder).
    face_gallery: Path | None = None
    identity_threshold: float = 0.5
    # Blurred videos bigger than this are not returned inline (video_size still says how big).
    max_inline_video_mb: int = 64


class AnnotationSettings(Settings):
    annotation: AnnotationOptions = Field(default_factory=AnnotationOptions)


def annotation_options(settings: Settings) -> AnnotationOptions:
    """The tuning carried by `settings` (the annotation service's own), else the defaults."""
    section = settings.annotation
    return section if isinstance(section, AnnotationOptions) else AnnotationOptions()


@lru_cache
def get_annotation_settings() -> AnnotationSettings:
    return AnnotationSettings()
