"""The annotation tasks, in one table: what each task is called, which repository models serve it,
where its result goes, how a unit runs and which single-model RPC serves it. The catalog builds the
fan-out's units from TASKS, the servicer registers one handler per row's `rpc`, and the DAM stores
each result under the row's `name` (TASK_OF_FIELD).

Names. `TaskSpec.name` is the annotation task: what the DAM stores (`annotations.task`, the
"annotation type" facet) and what ModelError.task carries; renaming one needs an Alembic migration
of the stored rows. The repository tasks (`maam.json` `task`) say what kind of model a file is; a
row names the ones it runs. `field` is the proto's name (oneof of the stream responses, field of
the unary ones) and `rpc` the proto's single-model RPC; both are fixed by the protocol.

Which adapter builds which repository model is services/annotation/models/formats.py (FORMATS).

How to add a task (e.g. face attributes, an image-level classifier): write the run function
`async def run(unit: Unit, payload) -> <Response message>` below (the payload is an Image, a
DecodedVideo, a VideoFile or the text, by `media`); `unit.model` is the serving model (one of the
row's `adapters`), `unit.helpers[key]` the default model of each repository task named in
`helpers` (None when not installed). Add one TaskSpec row per media type, and the formats of its
models to FORMATS. When it has a new result field or RPC, add them to protos/media_annotation.proto
first (`make protos`); tests/annotation/test_tasks.py checks that every single-model RPC and every
result field is served by exactly one row.

A row's models: every installed model of the repository tasks in `models` is a unit of the fan-out
(the sidecar's `default: true` first, it fills the unary response's field); the single-model RPC
runs the requested one or that default. When none is installed, the default of the first
`fallback` task that has one stands in (in the fan-out too unless `fallback_in_fanout` is False).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np
from google.protobuf.message import Message

from protos import media_annotation_pb2 as pb
from services.annotation import messages as m
from services.annotation.face_blurring import blur
from services.annotation.faces import FacePipeline
from services.annotation.models.captioning import Captioner
from services.annotation.models.classification import ClipClassifier, ImageClassifier
from services.annotation.models.detection import NsfwDetector, YoloDetector
from services.annotation.models.embedding import ImageEmbedder, TextEmbedder
from services.annotation.models.mvsd import MvsdSaliency
from services.annotation.models.ocr import OcrPipeline
from services.annotation.models.preprocess import crop
from services.annotation.models.saliency import SaliencyModel, SpectralResidual
from services.annotation.models.types import Box, Label, Scored
from services.annotation.models.video_clip import VideoClassifier
from services.annotation.models.zeroshot import ZeroShotHead
from services.annotation.video import DecodedVideo

if TYPE_CHECKING:
    from services.annotation.catalog import ModelCatalog


class Media(Enum):
    """What a row's unit runs on: a decoded image, sampled keyframes and clips, the video file
    itself, or a text."""

    IMAGE = "image"
    VIDEO = "video"
    VIDEO_FILE = "video file"
    TEXT = "text"


@dataclass(frozen=True)
class Image:
    rgb: np.ndarray
    # ImageRegionFeatureExtraction's requested regions (normalised); empty: the detector proposes.
    boxes: Sequence[Box] = ()
    # video_options.equirectangular on a single-model RPC: a 360° image (saliency wraps its seam).
    equirectangular: bool = False


@dataclass(frozen=True)
class VideoFile:
    data: bytes
    options: pb.VideoOptions
    max_inline_bytes: int


Run = Callable[["Unit", Any], Awaitable[Message]]


@dataclass(frozen=True)
class TaskSpec:
    """One row: task `name` on `media`, answered by `rpc` and, when `field` is set, by the
    multi-model calls. Its units run `run` on the models of the repository tasks `models` (else the
    default of `fallback`) that are one of `adapters`; `helpers` maps a key to a repository task
    whose default model the run also draws on."""

    name: str
    media: Media
    rpc: str
    field: str | None  # None: served by its RPC only, not part of the multi-model calls
    models: tuple[str, ...]
    adapters: tuple[type, ...]
    run: Run
    fallback: tuple[str, ...] = ()
    fallback_in_fanout: bool = True
    helpers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Video rows that read clips: frames per clip the model wants.
    clip_frames: Callable[[Any], int] | None = None
    # The model an RPC without `model` runs, when it is not the task's default (a paired model).
    default_model: Callable[[ModelCatalog], str] | None = None


@dataclass(frozen=True)
class Unit:
    """One model's share of the work: the row, the model serving it (found under repository task
    `source`), the helper models its run draws on, and whether it is the row's default."""

    spec: TaskSpec
    model: Any  # one of spec.adapters (the catalog checks)
    source: str
    helpers: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    default: bool = False

    @property
    def name(self) -> str:
        return str(self.model.name)

    @property
    def task(self) -> str:
        return self.spec.name

    @property
    def field(self) -> str:
        return self.spec.field or ""

    @property
    def clip_frames(self) -> int:
        return self.spec.clip_frames(self.model) if self.spec.clip_frames else 0

    def run(self, payload: object) -> Awaitable[Message]:
        return self.spec.run(self, payload)


# ---- run functions: one unit's model(s) on its payload, as the response message --------------
async def image_objects(unit: Unit, image: Image) -> pb.ImageObjectDetectionResponse:
    detections = await unit.model.detect(image.rgb)
    return pb.ImageObjectDetectionResponse(
        model=unit.name, detections=[m.detection_pb(d) for d in detections], image_size=m.size_pb(image.rgb)
    )


async def image_nsfw(unit: Unit, image: Image) -> pb.ImageNSFWDetectionResponse:
    """The unit's model decides `is_nsfw`; beside an image classifier, the body-part detector
    (helper `regions`) runs too and its regions are the evidence."""
    evidence = unit.helpers.get("regions")
    runs = [unit.model.score(image.rgb)] + ([evidence.score(image.rgb)] if evidence not in (None, unit.model) else [])
    scored, *found = await asyncio.gather(*runs)
    return pb.ImageNSFWDetectionResponse(
        model=unit.name,
        score=scored.score,
        is_nsfw=scored.positive,
        threshold=scored.threshold,
        regions=[m.detection_pb(d) for d in (found[0] if found else scored).regions],
        labels=[m.label_pb(label) for label in scored.labels],
        image_size=m.size_pb(image.rgb),
    )


async def image_disturbing(unit: Unit, image: Image) -> pb.ImageDisturbingContentDetectionResponse:
    scored: Scored = await unit.model.score(image.rgb)
    return pb.ImageDisturbingContentDetectionResponse(
        model=unit.name,
        score=scored.score,
        is_disturbing=scored.positive,
        threshold=scored.threshold,
        labels=[m.label_pb(label) for label in scored.labels],
    )


async def image_meme(unit: Unit, image: Image) -> pb.ImageMemeDetectionResponse:
    """The meme classifier's verdict, with the hateful-meme classifier's score when installed."""
    scored: Scored = await unit.model.score(image.rgb)
    out = pb.ImageMemeDetectionResponse(
        model=unit.name, score=scored.score, is_meme=scored.positive, threshold=scored.threshold
    )
    hateful = unit.helpers.get("hateful")
    if hateful is not None:
        out.hateful_score = (await hateful.score(image.rgb)).score
        out.hateful_model = hateful.name
    return out


async def image_actions(unit: Unit, image: Image) -> pb.ImageActionRecognitionResponse:
    labels = await unit.model.classify(image.rgb)
    return pb.ImageActionRecognitionResponse(model=unit.name, actions=[m.label_pb(label) for label in labels])


async def image_tags(unit: Unit, image: Image) -> pb.ImageTaggingResponse:
    head: ZeroShotHead = unit.model
    tags = await head.tags(image.rgb)
    return pb.ImageTaggingResponse(
        model=unit.name, tags=[m.label_pb(t) for t in tags], threshold=float(head.param("threshold", 0.1))
    )


async def image_caption(unit: Unit, image: Image) -> pb.ImageCaptioningResponse:
    result = await unit.model.caption(image.rgb)
    return pb.ImageCaptioningResponse(
        model=unit.name, caption=result.text, score=result.score, alternatives=result.alternatives
    )


async def image_embedding(unit: Unit, image: Image) -> pb.ImageCrossModalEmbeddingResponse:
    vector = await unit.model.embed_one(image.rgb)
    return pb.ImageCrossModalEmbeddingResponse(model=unit.name, embedding=m.embedding_pb(vector))


async def image_faces(unit: Unit, image: Image) -> pb.ImageFaceRecognitionResponse:
    pipeline: FacePipeline = unit.model
    found = await pipeline.faces(image.rgb)
    return pb.ImageFaceRecognitionResponse(
        model=unit.name,
        faces=[m.face_pb(f) for f in found],
        image_size=m.size_pb(image.rgb),
        embedding_model=pipeline.embedder.name if pipeline.embedder else "",
    )


async def image_saliency(unit: Unit, image: Image) -> pb.ImageSaliencyDetectionResponse:
    if isinstance(unit.model, MvsdSaliency):
        result = await unit.model.saliency(image.rgb, image.equirectangular)  # 360°: seam-aware
    else:
        result = await unit.model.saliency(image.rgb)
    png = await asyncio.to_thread(m.saliency_map_pb, result)  # PNG encoding off the event loop
    return pb.ImageSaliencyDetectionResponse(
        model=result.model, map=png, salient_regions=[m.box_pb(b) for b in result.regions]
    )


async def image_text(unit: Unit, image: Image) -> pb.ImageTextRecognitionResponse:
    lines = await unit.model.read(image.rgb)
    return pb.ImageTextRecognitionResponse(
        model=unit.name,
        lines=[m.text_line_pb(line) for line in lines],
        full_text="\n".join(line.text for line in lines),
        image_size=m.size_pb(image.rgb),
    )


async def image_regions(unit: Unit, image: Image) -> pb.ImageRegionFeatureExtractionResponse:
    """Region search when the request gives boxes; otherwise the object detector proposes them."""
    detector = None if image.boxes else unit.helpers.get("proposals")
    proposals: list[tuple[Box, str, float, bool]] = [(b, "", 0.0, True) for b in image.boxes]
    if detector is not None:
        proposals = [(d.box, d.label, d.score, False) for d in await detector.detect(image.rgb)]
    vectors = await unit.model.embed([image.rgb] + [crop(image.rgb, box) for box, *_ in proposals])
    return pb.ImageRegionFeatureExtractionResponse(
        model=unit.name,
        whole_image=m.embedding_pb(vectors[0]),
        regions=[
            pb.RegionFeature(
                box=m.box_pb(box), label=label, score=score, embedding=m.embedding_pb(v), from_request=from_request
            )
            for (box, label, score, from_request), v in zip(proposals, vectors[1:], strict=True)
        ],
        image_size=m.size_pb(image.rgb),
        proposal_model=detector.name if detector is not None else "",
    )


async def text_embedding(unit: Unit, text: str) -> pb.TextCrossModalEmbeddingResponse:
    vector = await unit.model.embed_text(text)
    return pb.TextCrossModalEmbeddingResponse(model=unit.name, embedding=m.embedding_pb(vector))


def paired_text_model(catalog: ModelCatalog) -> str:
    """The text encoder named by the default image encoder's sidecar (`params.text_model`): its
    vectors share that space."""
    from services.annotation.catalog import MissingModelError

    image_model = catalog.default("image_embedding")
    if not isinstance(image_model, ImageEmbedder):
        return ""
    name = str(image_model.params.get("text_model", ""))
    if not name and image_model.params.get("cross_modal") is False:
        raise MissingModelError(
            f"the installed image embedding {image_model.name!r} is visual only (not cross-modal); "
            "text-to-image search needs CLIP: `maam models pull clip_vit_b32`"
        )
    return name


async def _frame_scores(model: NsfwDetector | ImageClassifier, video: DecodedVideo) -> list[Scored]:
    if isinstance(model, ImageClassifier):
        probs = await model.probabilities([f.rgb for f in video.keyframes])
        return [model.scored(p) for p in probs]
    return list(await asyncio.gather(*(model.score(f.rgb) for f in video.keyframes)))


async def _flagged(unit: Unit, video: DecodedVideo) -> dict[str, Any]:
    """A video is flagged when any keyframe is; the triggering times are those keyframes'."""
    scores = await _frame_scores(unit.model, video)
    threshold = scores[0].threshold if scores else float(unit.model.param("threshold", 0.5))
    pairs = list(zip(video.keyframes, scores, strict=True))
    return {
        "model": unit.name,
        "max_score": max((s.score for s in scores), default=0.0),
        "threshold": threshold,
        "frames": [pb.FrameScore(frame_index=f.index, timestamp=f.time, score=s.score) for f, s in pairs],
        "triggering_timestamps": [f.time for f, s in pairs if s.positive],
        "video": video.info(),
    }


async def video_nsfw(unit: Unit, video: DecodedVideo) -> pb.VideoNSFWDetectionResponse:
    fields = await _flagged(unit, video)
    return pb.VideoNSFWDetectionResponse(is_nsfw=bool(fields["triggering_timestamps"]), **fields)


async def video_disturbing(unit: Unit, video: DecodedVideo) -> pb.VideoDisturbingContentDetectionResponse:
    fields = await _flagged(unit, video)
    return pb.VideoDisturbingContentDetectionResponse(is_disturbing=bool(fields["triggering_timestamps"]), **fields)


async def video_objects(unit: Unit, video: DecodedVideo) -> pb.VideoObjectDetectionResponse:
    results = await asyncio.gather(*(unit.model.detect(f.rgb) for f in video.keyframes))
    return pb.VideoObjectDetectionResponse(
        model=unit.name,
        frames=[
            pb.FrameDetections(frame_index=f.index, timestamp=f.time, detections=[m.detection_pb(d) for d in dets])
            for f, dets in zip(video.keyframes, results, strict=True)
        ],
        video=video.info(),
    )


async def video_faces(unit: Unit, video: DecodedVideo) -> pb.VideoFaceRecognitionResponse:
    pipeline: FacePipeline = unit.model
    results = await asyncio.gather(*(pipeline.faces(f.rgb) for f in video.keyframes))
    return pb.VideoFaceRecognitionResponse(
        model=unit.name,
        frames=[
            pb.FrameFaces(frame_index=f.index, timestamp=f.time, faces=[m.face_pb(x) for x in found])
            for f, found in zip(video.keyframes, results, strict=True)
        ],
        video=video.info(),
        embedding_model=pipeline.embedder.name if pipeline.embedder else "",
    )


async def video_text(unit: Unit, video: DecodedVideo) -> pb.VideoTextRecognitionResponse:
    """OCR on every keyframe, so a video's text is found by time (the timeline) and by its words (search)."""
    results = await asyncio.gather(*(unit.model.read(f.rgb) for f in video.keyframes))
    frames = [
        pb.FrameText(frame_index=f.index, timestamp=f.time, lines=[m.text_line_pb(line) for line in lines],
                     full_text="\n".join(line.text for line in lines))
        for f, lines in zip(video.keyframes, results, strict=True)
    ]
    # A title held on screen is read on several keyframes: the video's text lists it once.
    distinct = dict.fromkeys(frame.full_text for frame in frames if frame.full_text)
    return pb.VideoTextRecognitionResponse(model=unit.name, frames=frames, full_text="\n".join(distinct),
                                           video=video.info())


async def video_saliency(unit: Unit, video: DecodedVideo) -> pb.VideoSaliencyDetectionResponse:
    if isinstance(unit.model, MvsdSaliency):  # the keyframes in order, as clips; 360°: seam-aware
        maps = await unit.model.saliency_frames([f.rgb for f in video.keyframes], video.equirectangular)
    else:
        maps = list(await asyncio.gather(*(unit.model.saliency(f.rgb) for f in video.keyframes)))
    pngs = [await asyncio.to_thread(m.saliency_map_pb, s) for s in maps]
    return pb.VideoSaliencyDetectionResponse(
        model=unit.name,
        frames=[
            pb.FrameSaliency(frame_index=f.index, timestamp=f.time, map=png)
            for f, png in zip(video.keyframes, pngs, strict=True)
        ],
        video=video.info(),
    )


async def video_actions(unit: Unit, video: DecodedVideo) -> pb.VideoActionRecognitionResponse:
    """Actions per clip: a clip model, or the image action classifier averaged over each clip's
    frames (TSN); the video's actions are the clip scores averaged."""
    model: ClipClassifier | ImageClassifier = unit.model
    clips: list[pb.ClipActions] = []
    totals: dict[tuple[str, int], float] = {}
    for clip in video.clips:
        if isinstance(model, ClipClassifier):
            labels = await model.classify_clip(clip.frames)
        else:
            labels = model.ranked((await model.probabilities(clip.frames)).mean(axis=0))
        clips.append(pb.ClipActions(start_time=clip.start, end_time=clip.end, actions=[m.label_pb(x) for x in labels]))
        for label in labels:
            key = (label.label, label.class_id)
            totals[key] = totals.get(key, 0.0) + label.score / max(1, len(video.clips))
    overall = [Label(name, score, cid) for (name, cid), score in sorted(totals.items(), key=lambda kv: -kv[1])]
    return pb.VideoActionRecognitionResponse(
        model=unit.name, clips=clips, actions=[m.label_pb(x) for x in overall[:5]], video=video.info()
    )


def action_clip_frames(model: ClipClassifier | ImageClassifier) -> int:
    """A clip model reads `clip_len` frames per clip; TSN averages 4."""
    return model.clip_len if isinstance(model, ClipClassifier) else 4


# ---- the task table -----------------------------------------------------------------------------
IMAGE, VIDEO = Media.IMAGE, Media.VIDEO
SCORERS = (NsfwDetector, ImageClassifier)
TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("object_detection", IMAGE, "ImageObjectDetection", "image_object_detection_result",
             ("object_detection",), (YoloDetector,), image_objects),
    TaskSpec("object_detection", VIDEO, "VideoObjectDetection", "video_object_detection_result",
             ("object_detection",), (YoloDetector,), video_objects),
    TaskSpec("nsfw", IMAGE, "ImageNSFWDetection", "image_nsfw_detection_result",
             ("nsfw_classification",), SCORERS, image_nsfw, fallback=("nsfw_detection",),
             helpers={"regions": "nsfw_detection"}),
    TaskSpec("nsfw", VIDEO, "VideoNSFWDetection", "video_nsfw_detection_result",
             ("nsfw_classification",), SCORERS, video_nsfw, fallback=("nsfw_detection",)),
    TaskSpec("disturbing", IMAGE, "ImageDisturbingContentDetection", "image_disturbing_content_detection_result",
             ("disturbing_classification",), (ImageClassifier,), image_disturbing),
    TaskSpec("disturbing", VIDEO, "VideoDisturbingContentDetection", "video_disturbing_content_detection_result",
             ("disturbing_classification",), (ImageClassifier,), video_disturbing),
    TaskSpec("meme", IMAGE, "ImageMemeDetection", "image_meme_detection_result",
             ("meme_classification",), (ImageClassifier,), image_meme,
             helpers={"hateful": "hateful_meme_classification"}),
    TaskSpec("action_recognition", IMAGE, "ImageActionRecognition", "image_action_recognition_result",
             ("action_recognition",), (ImageClassifier, VideoClassifier), image_actions,
             fallback=("video_action_recognition",)),
    TaskSpec("action_recognition", VIDEO, "VideoActionRecognition", "video_action_recognition_result",
             ("video_action_recognition",), (ClipClassifier, ImageClassifier), video_actions,
             fallback=("action_recognition",), clip_frames=action_clip_frames),
    TaskSpec("captioning", IMAGE, "ImageCaptioning", "image_captioning_result",
             ("image_captioning",), (Captioner,), image_caption),
    TaskSpec("cross_modal_embedding", IMAGE, "ImageCrossModalEmbedding", "image_cross_modal_embedding_result",
             ("image_embedding",), (ImageEmbedder,), image_embedding),
    TaskSpec("cross_modal_embedding", Media.TEXT, "TextCrossModalEmbedding", None,
             ("text_embedding",), (TextEmbedder,), text_embedding, default_model=paired_text_model),
    TaskSpec("face_recognition", IMAGE, "ImageFaceRecognition", "image_face_recognition_result",
             ("face_detection",), (FacePipeline,), image_faces),
    TaskSpec("face_recognition", VIDEO, "VideoFaceRecognition", "video_face_recognition_result",
             ("face_detection",), (FacePipeline,), video_faces),
    TaskSpec("face_blurring", Media.VIDEO_FILE, "VideoFaceBlurring", None,
             ("face_detection",), (FacePipeline,), blur),
    TaskSpec("region_features", IMAGE, "ImageRegionFeatureExtraction", "image_region_feature_extraction_result",
             ("region_embedding",), (ImageEmbedder,), image_regions,
             fallback=("image_embedding",), fallback_in_fanout=False, helpers={"proposals": "object_detection"}),
    TaskSpec("saliency", IMAGE, "ImageSaliencyDetection", "image_saliency_detection_result",
             ("saliency",), (SaliencyModel, SpectralResidual), image_saliency, fallback=("spectral_residual",)),
    TaskSpec("saliency", VIDEO, "VideoSaliencyDetection", "video_saliency_detection_result",
             ("saliency",), (SaliencyModel, SpectralResidual), video_saliency, fallback=("spectral_residual",)),
    TaskSpec("ocr", IMAGE, "ImageTextRecognition", "image_text_recognition_result",
             ("ocr_detection",), (OcrPipeline,), image_text),
    TaskSpec("ocr", VIDEO, "VideoTextRecognition", "video_text_recognition_result",
             ("ocr_detection",), (OcrPipeline,), video_text),
    TaskSpec("tagging", IMAGE, "ImageTagging", "image_tagging_result",
             ("image_tagging",), (ZeroShotHead,), image_tags),
)

# result field -> annotation task, for the DAM.
TASK_OF_FIELD: dict[str, str] = {spec.field: spec.name for spec in TASKS if spec.field}
