"""Up-front bounds on every size a request controls (views, boxes, models named, batch length, text and URL
length, video sampling options), checked before any asset is fetched or decoded, plus the per-request
render budget (views x pixels, views x faces). A request outside them is an AssetError (INVALID_ARGUMENT)
whose message names the field and the limit: one `views=100000` request once grew the service to 24 GB."""

from __future__ import annotations

import math
from collections.abc import Sequence

from protos import media_annotation_pb2 as pb
from services.annotation.assets import AssetError, invalid
from services.annotation.options import AnnotationOptions
from services.common.media import MODEL_3D_TYPES

# Sanity bounds without a setting: past these a value is a mistake, not a workload.
MAX_MODEL_NAME_CHARS = 200
MAX_KEYFRAMES_PER_MINUTE = 3600.0  # one a frame at 60 fps
MAX_CLIP_SECONDS = 3600.0
MAX_FACE_CHECK_EVERY = 10_000


def _url(url: str, field: str, options: AnnotationOptions) -> None:
    if len(url) > options.max_url_chars:
        raise invalid(f"{field}_url has {len(url):,} characters, over the {options.max_url_chars:,}-character limit")


def _model(name: str, field: str) -> None:
    if len(name) > MAX_MODEL_NAME_CHARS:
        raise invalid(f"{field} has a name of {len(name):,} characters, over the "
                      f"{MAX_MODEL_NAME_CHARS}-character limit")


def _models(models: Sequence[str], options: AnnotationOptions) -> None:
    if len(models) > options.max_models:
        raise invalid(f"models names {len(models):,} models, over the limit of {options.max_models}")
    for name in models:
        _model(name, "models")


def _number(value: float, field: str, maximum: float) -> None:
    if not math.isfinite(value) or not 0 <= value <= maximum:
        raise invalid(f"video_options.{field} is {value}; it must be a number from 0 (server default) to {maximum:g}")


def check_video_options(options: pb.VideoOptions) -> None:
    _number(options.max_keyframes_per_minute, "max_keyframes_per_minute", MAX_KEYFRAMES_PER_MINUTE)
    _number(options.clip_seconds, "clip_seconds", MAX_CLIP_SECONDS)
    if not 0 <= options.face_check_every <= MAX_FACE_CHECK_EVERY:
        raise invalid(f"video_options.face_check_every is {options.face_check_every}; it must be from 0 "
                      f"(server default) to {MAX_FACE_CHECK_EVERY}")


def check_single(request: pb.AnnotationRequest | pb.TextEmbeddingRequest, options: AnnotationOptions) -> None:
    _model(request.model, "model")
    if isinstance(request, pb.TextEmbeddingRequest):
        if len(request.text) > options.max_text_chars:
            raise invalid(f"text has {len(request.text):,} characters, over the "
                          f"{options.max_text_chars:,}-character limit")
        return
    _url(request.asset_url, "asset", options)
    if len(request.boxes) > options.max_boxes:
        raise invalid(f"boxes holds {len(request.boxes):,} boxes, over the limit of {options.max_boxes}")
    check_video_options(request.video_options)


def check_image(request: pb.ImageAnnotationRequest, options: AnnotationOptions) -> None:
    _url(request.image_url, "image", options)
    _models(request.models, options)


def check_batch(request: pb.ImageAnnotationRequestBatch, options: AnnotationOptions) -> None:
    if not request.requests:
        raise invalid("the batch holds no requests")
    if len(request.requests) > options.max_batch_requests:
        raise invalid(f"the batch holds {len(request.requests):,} requests, over the limit of "
                      f"{options.max_batch_requests}")
    for index, item in enumerate(request.requests):
        try:
            check_image(item, options)
        except AssetError as exc:
            raise invalid(f"requests[{index}]: {exc.message}") from exc


def check_video(request: pb.VideoAnnotationRequest, options: AnnotationOptions) -> None:
    _url(request.video_url, "video", options)
    _models(request.models, options)
    check_video_options(request.video_options)


def views_of(request: pb.ThreeDAnnotationRequest, options: AnnotationOptions) -> int:
    """The number of views to render, within the view count and the pixel budget."""
    views = request.views or options.render_views
    if not 1 <= views <= options.max_views:
        raise invalid(f"views is {request.views}; it must be from 0 (server default, {options.render_views}) "
                      f"to {options.max_views}")
    pixels = views * options.render_size**2
    if pixels > options.max_render_pixels:
        raise invalid(f"{views} views of {options.render_size}x{options.render_size} pixels are {pixels:,} pixels, "
                      f"over the per-request render budget of {options.max_render_pixels:,}")
    return views


def check_three_d(request: pb.ThreeDAnnotationRequest, options: AnnotationOptions) -> int:
    """Checks the request; returns the number of views to render."""
    _url(request.asset_url, "asset", options)
    kind = request.asset_type.lower().lstrip(".")
    if kind not in MODEL_3D_TYPES:
        what = f"unknown 3D format {request.asset_type[:40]!r}" if request.asset_type else "asset_type is required"
        raise invalid(f"{what}; asset_type must be one of {', '.join(sorted(MODEL_3D_TYPES))}")
    return views_of(request, options)


def check_render_work(faces: int, views: int, options: AnnotationOptions) -> None:
    """Rendering draws every face once per view: the product is the request's CPU budget."""
    if faces * views > options.max_rendered_faces:
        raise invalid(f"{views} views of a {faces:,}-face model draw {faces * views:,} faces, over the "
                      f"per-request budget of {options.max_rendered_faces:,} (fewer views, or a simpler mesh)")
