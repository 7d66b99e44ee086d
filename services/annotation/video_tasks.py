"""Video tasks on sampled keyframes and clips: detections and faces with their times, NSFW and
disturbing content (a video is flagged if any keyframe is, with the triggering times), saliency,
and actions per clip (a clip model, or the frame-level image classifier averaged over the clip's
frames as in TSN)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from protos import media_annotation_pb2 as pb
from services.annotation import messages as m
from services.annotation.catalog import ModelCatalog
from services.annotation.faces import FacePipeline
from services.annotation.models.classification import ClipClassifier, ImageClassifier
from services.annotation.models.detection import NsfwDetector, YoloDetector
from services.annotation.models.saliency import SPECTRAL_RESIDUAL, SaliencyModel, spectral_residual_saliency
from services.annotation.models.types import Label, Scored
from services.annotation.video import DecodedVideo

ACTION = "video_action_recognition_result"
DISTURBING = "video_disturbing_content_detection_result"
FACES = "video_face_recognition_result"
NSFW = "video_nsfw_detection_result"
OBJECTS = "video_object_detection_result"
SALIENCY = "video_saliency_detection_result"


@dataclass(frozen=True)
class VideoUnit:
    kind: str
    model: str
    task: str
    run: Callable[[DecodedVideo], Awaitable[object]]
    # Whether the unit needs clips decoded (action recognition).
    needs_clips: bool = False


async def _scores(model: NsfwDetector | ImageClassifier, video: DecodedVideo) -> list[Scored]:
    if isinstance(model, ImageClassifier):
        probs = await model.probabilities([f.rgb for f in video.keyframes])
        return [model.scored(p) for p in probs]
    return list(await asyncio.gather(*(model.score(f.rgb) for f in video.keyframes)))


async def _flagged(model: NsfwDetector | ImageClassifier, video: DecodedVideo) -> dict:
    scores = await _scores(model, video)
    threshold = scores[0].threshold if scores else float(model.param("threshold", 0.5))
    frames = [
        pb.FrameScore(frame_index=f.index, timestamp=f.time, score=s.score)
        for f, s in zip(video.keyframes, scores, strict=True)
    ]
    return {
        "model": model.name,
        "max_score": max((s.score for s in scores), default=0.0),
        "threshold": threshold,
        "frames": frames,
        "triggering_timestamps": [f.time for f, s in zip(video.keyframes, scores, strict=True) if s.positive],
        "video": video.info(),
    }


async def nsfw(model: NsfwDetector | ImageClassifier, video: DecodedVideo) -> pb.VideoNSFWDetectionResponse:
    fields = await _flagged(model, video)
    return pb.VideoNSFWDetectionResponse(is_nsfw=bool(fields["triggering_timestamps"]), **fields)


async def disturbing(model: ImageClassifier, video: DecodedVideo) -> pb.VideoDisturbingContentDetectionResponse:
    fields = await _flagged(model, video)
    return pb.VideoDisturbingContentDetectionResponse(is_disturbing=bool(fields["triggering_timestamps"]), **fields)


async def objects(model: YoloDetector, video: DecodedVideo) -> pb.VideoObjectDetectionResponse:
    results = await asyncio.gather(*(model.detect(f.rgb) for f in video.keyframes))
    return pb.VideoObjectDetectionResponse(
        model=model.name,
        frames=[
            pb.FrameDetections(frame_index=f.index, timestamp=f.time, detections=[m.detection_pb(d) for d in dets])
            for f, dets in zip(video.keyframes, results, strict=True)
        ],
        video=video.info(),
    )


async def faces(pipeline: FacePipeline, video: DecodedVideo) -> pb.VideoFaceRecognitionResponse:
    results = await asyncio.gather(*(pipeline.faces(f.rgb) for f in video.keyframes))
    return pb.VideoFaceRecognitionResponse(
        model=pipeline.name,
        frames=[
            pb.FrameFaces(frame_index=f.index, timestamp=f.time, faces=[m.face_pb(x) for x in found])
            for f, found in zip(video.keyframes, results, strict=True)
        ],
        video=video.info(),
        embedding_model=pipeline.embedder.name if pipeline.embedder else "",
    )


async def saliency(model: SaliencyModel | None, video: DecodedVideo) -> pb.VideoSaliencyDetectionResponse:
    if model is None:
        maps = [await asyncio.to_thread(spectral_residual_saliency, f.rgb) for f in video.keyframes]
    else:
        maps = list(await asyncio.gather(*(model.saliency(f.rgb) for f in video.keyframes)))
    pngs = [await asyncio.to_thread(m.saliency_map_pb, s) for s in maps]
    return pb.VideoSaliencyDetectionResponse(
        model=model.name if model is not None else SPECTRAL_RESIDUAL,
        frames=[
            pb.FrameSaliency(frame_index=f.index, timestamp=f.time, map=png)
            for f, png in zip(video.keyframes, pngs, strict=True)
        ],
        video=video.info(),
    )


async def actions(model: ClipClassifier | ImageClassifier, video: DecodedVideo) -> pb.VideoActionRecognitionResponse:
    clips: list[pb.ClipActions] = []
    totals: dict[tuple[str, int], float] = {}
    for clip in video.clips:
        if isinstance(model, ClipClassifier):
            labels = await model.classify_clip(clip.frames)
        else:  # TSN: average the frame-level classifier over the clip's frames
            mean = (await model.probabilities(clip.frames)).mean(axis=0)
            labels = model.ranked(mean)
        clips.append(
            pb.ClipActions(start_time=clip.start, end_time=clip.end, actions=[m.label_pb(x) for x in labels])
        )
        for label in labels:
            key = (label.label, label.class_id)
            totals[key] = totals.get(key, 0.0) + label.score / max(1, len(video.clips))
    overall = [Label(name, score, cid) for (name, cid), score in sorted(totals.items(), key=lambda kv: -kv[1])]
    return pb.VideoActionRecognitionResponse(
        model=model.name, clips=clips, actions=[m.label_pb(x) for x in overall[:5]], video=video.info()
    )


def clip_frames_needed(catalog: ModelCatalog) -> int:
    clip_model = catalog.default("video_action_recognition")
    if isinstance(clip_model, ClipClassifier):
        return clip_model.clip_len
    return 4 if catalog.default("action_recognition") is not None else 0


def video_units(catalog: ModelCatalog) -> list[VideoUnit]:
    units: list[VideoUnit] = []

    def add(kind: str, model: str, task: str, run: Callable[[DecodedVideo], Awaitable[object]], clips=False) -> None:
        units.append(VideoUnit(kind, model, task, run, clips))

    for a in catalog.of_task("object_detection"):
        add(OBJECTS, a.name, a.task, lambda v, a=a: objects(a, v))
    # As for images: an installed NSFW classifier decides alone.
    nsfw_task = "nsfw_classification" if catalog.of_task("nsfw_classification") else "nsfw_detection"
    for task in (nsfw_task,):
        for a in catalog.of_task(task):
            add(NSFW, a.name, a.task, lambda v, a=a: nsfw(a, v))
    for a in catalog.of_task("disturbing_classification"):
        add(DISTURBING, a.name, a.task, lambda v, a=a: disturbing(a, v))
    for p in catalog.face_pipelines:
        add(FACES, p.name, "face_detection", lambda v, p=p: faces(p, v))
    clip_models = catalog.of_task("video_action_recognition") or catalog.of_task("action_recognition")[:1]
    for a in clip_models:
        add(ACTION, a.name, a.task, lambda v, a=a: actions(a, v), clips=True)
    saliency_models = catalog.of_task("saliency")
    for a in saliency_models:
        add(SALIENCY, a.name, a.task, lambda v, a=a: saliency(a, v))
    if not saliency_models:
        add(SALIENCY, SPECTRAL_RESIDUAL, "saliency", lambda v: saliency(None, v))
    return units


