"""One image task = one adapter (or pipeline) call turned into its response message. The fan-out
runs these as units; the single-model endpoints call them directly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from protos import media_annotation_pb2 as pb
from services.annotation import messages as m
from services.annotation.catalog import ModelCatalog
from services.annotation.faces import FacePipeline
from services.annotation.models.captioning import Captioner
from services.annotation.models.classification import ImageClassifier
from services.annotation.models.detection import NsfwDetector, YoloDetector
from services.annotation.models.embedding import ImageEmbedder
from services.annotation.models.ocr import OcrPipeline
from services.annotation.models.preprocess import crop
from services.annotation.models.saliency import SPECTRAL_RESIDUAL, SaliencyModel, spectral_residual_saliency
from services.annotation.models.types import Box

# The oneof field of ImageAnnotationStreamResponse (and field of ImageAnnotationResponse) per kind.
ACTION = "image_action_recognition_result"
CAPTION = "image_captioning_result"
CROSS_MODAL = "image_cross_modal_embedding_result"
DISTURBING = "image_disturbing_content_detection_result"
FACES = "image_face_recognition_result"
MEME = "image_meme_detection_result"
OBJECTS = "image_object_detection_result"
NSFW = "image_nsfw_detection_result"
SALIENCY = "image_saliency_detection_result"
TEXT = "image_text_recognition_result"
REGIONS = "image_region_feature_extraction_result"


@dataclass(frozen=True)
class ImageUnit:
    """One model's share of a fan-out: its name, task, result field and how to run it."""

    kind: str
    model: str
    task: str
    run: Callable[[np.ndarray], Awaitable[object]]


async def object_detection(model: YoloDetector, rgb: np.ndarray) -> pb.ImageObjectDetectionResponse:
    detections = await model.detect(rgb)
    return pb.ImageObjectDetectionResponse(
        model=model.name, detections=[m.detection_pb(d) for d in detections], image_size=m.size_pb(rgb)
    )


async def nsfw(model: NsfwDetector | ImageClassifier, rgb: np.ndarray) -> pb.ImageNSFWDetectionResponse:
    scored = await model.score(rgb)
    return pb.ImageNSFWDetectionResponse(
        model=model.name,
        score=scored.score,
        is_nsfw=scored.positive,
        threshold=scored.threshold,
        regions=[m.detection_pb(d) for d in scored.regions],
        labels=[m.label_pb(label) for label in scored.labels],
        image_size=m.size_pb(rgb),
    )


async def disturbing(model: ImageClassifier, rgb: np.ndarray) -> pb.ImageDisturbingContentDetectionResponse:
    scored = await model.score(rgb)
    return pb.ImageDisturbingContentDetectionResponse(
        model=model.name,
        score=scored.score,
        is_disturbing=scored.positive,
        threshold=scored.threshold,
        labels=[m.label_pb(label) for label in scored.labels],
    )


async def meme(
    model: ImageClassifier, hateful: ImageClassifier | None, rgb: np.ndarray
) -> pb.ImageMemeDetectionResponse:
    scored = await model.score(rgb)
    out = pb.ImageMemeDetectionResponse(
        model=model.name, score=scored.score, is_meme=scored.positive, threshold=scored.threshold
    )
    if hateful is not None:
        out.hateful_score = (await hateful.score(rgb)).score
        out.hateful_model = hateful.name
    return out


async def action(model: ImageClassifier, rgb: np.ndarray) -> pb.ImageActionRecognitionResponse:
    labels = await model.classify(rgb)
    return pb.ImageActionRecognitionResponse(model=model.name, actions=[m.label_pb(label) for label in labels])


async def caption(model: Captioner, rgb: np.ndarray) -> pb.ImageCaptioningResponse:
    result = await model.caption(rgb)
    return pb.ImageCaptioningResponse(
        model=model.name, caption=result.text, score=result.score, alternatives=result.alternatives
    )


async def cross_modal(model: ImageEmbedder, rgb: np.ndarray) -> pb.ImageCrossModalEmbeddingResponse:
    vector = await model.embed_one(rgb)
    return pb.ImageCrossModalEmbeddingResponse(model=model.name, embedding=m.embedding_pb(vector))


async def faces(pipeline: FacePipeline, rgb: np.ndarray) -> pb.ImageFaceRecognitionResponse:
    found = await pipeline.faces(rgb)
    return pb.ImageFaceRecognitionResponse(
        model=pipeline.name,
        faces=[m.face_pb(f) for f in found],
        image_size=m.size_pb(rgb),
        embedding_model=pipeline.embedder.name if pipeline.embedder else "",
    )


async def saliency(model: SaliencyModel | None, rgb: np.ndarray) -> pb.ImageSaliencyDetectionResponse:
    # FFTs and PNG encoding run in a worker thread: they would otherwise stall the event loop.
    if model is not None:
        result = await model.saliency(rgb)
    else:
        result = await asyncio.to_thread(spectral_residual_saliency, rgb)
    png = await asyncio.to_thread(m.saliency_map_pb, result)
    return pb.ImageSaliencyDetectionResponse(
        model=result.model, map=png, salient_regions=[m.box_pb(b) for b in result.regions]
    )


async def text(pipeline: OcrPipeline, rgb: np.ndarray) -> pb.ImageTextRecognitionResponse:
    lines = await pipeline.read(rgb)
    return pb.ImageTextRecognitionResponse(
        model=pipeline.name,
        lines=[m.text_line_pb(line) for line in lines],
        full_text="\n".join(line.text for line in lines),
        image_size=m.size_pb(rgb),
    )


async def regions(
    model: ImageEmbedder, detector: YoloDetector | None, rgb: np.ndarray, boxes: Sequence[Box] = ()
) -> pb.ImageRegionFeatureExtractionResponse:
    """Region search when boxes are given; otherwise the detector proposes the regions."""
    proposals: list[tuple[Box, str, float, bool]] = [(b, "", 0.0, True) for b in boxes]
    if not boxes and detector is not None:
        proposals = [(d.box, d.label, d.score, False) for d in await detector.detect(rgb)]
    vectors = await model.embed([rgb] + [crop(rgb, box) for box, *_ in proposals])
    return pb.ImageRegionFeatureExtractionResponse(
        model=model.name,
        whole_image=m.embedding_pb(vectors[0]),
        regions=[
            pb.RegionFeature(
                box=m.box_pb(box), label=label, score=score, embedding=m.embedding_pb(v), from_request=from_request
            )
            for (box, label, score, from_request), v in zip(proposals, vectors[1:], strict=True)
        ],
        image_size=m.size_pb(rgb),
        proposal_model=detector.name if detector is not None and not boxes else "",
    )


def image_units(catalog: ModelCatalog) -> list[ImageUnit]:
    """Every installed image model as a unit of the fan-out (plus the saliency fallback)."""
    units: list[ImageUnit] = []

    def add(kind: str, model: str, task: str, run: Callable[[np.ndarray], Awaitable[object]]) -> None:
        units.append(ImageUnit(kind, model, task, run))

    for a in catalog.of_task("object_detection"):
        add(OBJECTS, a.name, a.task, lambda rgb, a=a: object_detection(a, rgb))
    # An installed NSFW classifier decides alone (the body-part regions ride along as its evidence).
    nsfw_task = "nsfw_classification" if catalog.of_task("nsfw_classification") else "nsfw_detection"
    for task in (nsfw_task,):
        for a in catalog.of_task(task):
            add(NSFW, a.name, a.task, lambda rgb, a=a: nsfw(a, rgb))
    for a in catalog.of_task("disturbing_classification"):
        add(DISTURBING, a.name, a.task, lambda rgb, a=a: disturbing(a, rgb))
    hateful = catalog.default("hateful_meme_classification")
    for a in catalog.of_task("meme_classification"):
        add(MEME, a.name, a.task, lambda rgb, a=a: meme(a, hateful, rgb))  # type: ignore[arg-type]
    for a in catalog.of_task("action_recognition"):
        add(ACTION, a.name, a.task, lambda rgb, a=a: action(a, rgb))
    for a in catalog.of_task("image_captioning"):
        add(CAPTION, a.name, a.task, lambda rgb, a=a: caption(a, rgb))
    for a in catalog.of_task("image_embedding"):
        add(CROSS_MODAL, a.name, a.task, lambda rgb, a=a: cross_modal(a, rgb))
    for p in catalog.face_pipelines:
        add(FACES, p.name, "face_detection", lambda rgb, p=p: faces(p, rgb))
    detector = catalog.default("object_detection")
    for a in catalog.of_task("region_embedding"):
        add(REGIONS, a.name, a.task, lambda rgb, a=a: regions(a, detector, rgb))  # type: ignore[arg-type]
    saliency_models = catalog.of_task("saliency")
    for a in saliency_models:
        add(SALIENCY, a.name, a.task, lambda rgb, a=a: saliency(a, rgb))
    if not saliency_models:
        add(SALIENCY, SPECTRAL_RESIDUAL, "saliency", lambda rgb: saliency(None, rgb))
    for p in catalog.ocr_pipelines:
        add(TEXT, p.name, "ocr_detection", lambda rgb, p=p: text(p, rgb))
    return units
