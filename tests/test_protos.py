"""The gRPC contract: Annex II kept exactly, every message defined and commented, stubs fresh."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protos import media_annotation_pb2
from services.common.protos_codegen import GENERATED, PROTO, REPO_ROOT, generate

SERVICE = media_annotation_pb2.DESCRIPTOR.services_by_name["MediaAnnotationServer"]

# Table B.1 of Annex II: rpc -> (request, response, server streaming).
ANNEX_RPCS = {
    "ImageAnnotationStream": ("ImageAnnotationRequest", "ImageAnnotationStreamResponse", True),
    "ImageAnnotationStreamBatch": ("ImageAnnotationRequestBatch", "ImageAnnotationStreamResponseBatch", True),
    "VideoAnnotationStream": ("VideoAnnotationRequest", "VideoAnnotationStreamResponse", True),
    "ImageAnnotation": ("ImageAnnotationRequest", "ImageAnnotationResponse", False),
    "ThreeDAnnotation": ("ThreeDAnnotationRequest", "Annotation3dResponse", False),
    "VideoAnnotation": ("VideoAnnotationRequest", "VideoAnnotationResponse", False),
    "ImageActionRecognition": ("AnnotationRequest", "ImageActionRecognitionResponse", False),
    "ImageCaptioning": ("AnnotationRequest", "ImageCaptioningResponse", False),
    "ImageCrossModalEmbedding": ("AnnotationRequest", "ImageCrossModalEmbeddingResponse", False),
    "ImageDisturbingContentDetection": ("AnnotationRequest", "ImageDisturbingContentDetectionResponse", False),
    "ImageFaceRecognition": ("AnnotationRequest", "ImageFaceRecognitionResponse", False),
    "ImageMemeDetection": ("AnnotationRequest", "ImageMemeDetectionResponse", False),
    "ImageNSFWDetection": ("AnnotationRequest", "ImageNSFWDetectionResponse", False),
    "ImageObjectDetection": ("AnnotationRequest", "ImageObjectDetectionResponse", False),
    "ImageRegionFeatureExtraction": ("AnnotationRequest", "ImageRegionFeatureExtractionResponse", False),
    "VideoActionRecognition": ("AnnotationRequest", "VideoActionRecognitionResponse", False),
    "VideoDisturbingContentDetection": ("AnnotationRequest", "VideoDisturbingContentDetectionResponse", False),
    "VideoFaceBlurring": ("AnnotationRequest", "VideoFaceBlurringResponse", False),
    "VideoFaceRecognition": ("AnnotationRequest", "VideoFaceRecognitionResponse", False),
    "VideoNSFWDetection": ("AnnotationRequest", "VideoNSFWDetectionResponse", False),
    "VideoObjectDetection": ("AnnotationRequest", "VideoObjectDetectionResponse", False),
}

EXTRA_RPCS = {
    "ImageSaliencyDetection": ("AnnotationRequest", "ImageSaliencyDetectionResponse", False),
    "VideoSaliencyDetection": ("AnnotationRequest", "VideoSaliencyDetectionResponse", False),
    "TextCrossModalEmbedding": ("TextEmbeddingRequest", "TextCrossModalEmbeddingResponse", False),
    "ImageTextRecognition": ("AnnotationRequest", "ImageTextRecognitionResponse", False),
    "VideoTextRecognition": ("AnnotationRequest", "VideoTextRecognitionResponse", False),
    "ImageTagging": ("AnnotationRequest", "ImageTaggingResponse", False),
    "ListCapabilities": ("CapabilitiesRequest", "CapabilitiesResponse", False),
}

_IMAGE_RESULTS = {
    "image_action_recognition_result": 10,
    "image_captioning_result": 11,
    "image_cross_modal_embedding_result": 12,
    "image_disturbing_content_detection_result": 13,
    "image_face_recognition_result": 14,
    "image_meme_detection_result": 15,
    "image_object_detection_result": 16,
    "image_nsfw_detection_result": 17,
}
_VIDEO_RESULTS = {
    "video_action_recognition_result": 10,
    "video_disturbing_content_detection_result": 13,
    "video_face_recognition_result": 11,
    "video_nsfw_detection_result": 14,
    "video_object_detection_result": 12,
}
_STATUS = {"status": 1, "error_msg": 2, "valid_models": 3}

# Annex II fields: message -> {field: number}.
ANNEX_FIELDS = {
    "AnnotationRequest": {"asset_url": 1, "asset_data": 2},
    "ImageAnnotationRequest": {"image_url": 1, "image_data": 2},
    "ImageAnnotationResponse": {**_STATUS, **_IMAGE_RESULTS},
    "ImageAnnotationStreamResponse": _IMAGE_RESULTS,
    "VideoAnnotationRequest": {"video_url": 1, "video_data": 2},
    "VideoAnnotationResponse": {**_STATUS, **_VIDEO_RESULTS},
    "VideoAnnotationStreamResponse": _VIDEO_RESULTS,
    "ThreeDAnnotationRequest": {"asset_url": 1, "asset_type": 2},
}


@pytest.mark.parametrize("rpc", sorted({**ANNEX_RPCS, **EXTRA_RPCS}))
def test_every_rpc_has_its_annex_signature(rpc: str) -> None:
    request, response, streaming = {**ANNEX_RPCS, **EXTRA_RPCS}[rpc]
    method = SERVICE.methods_by_name[rpc]
    assert method.input_type.name == request
    assert method.output_type.name == response
    assert method.server_streaming is streaming
    assert method.client_streaming is False


def test_no_rpc_beyond_annex_and_declared_extras() -> None:
    assert set(SERVICE.methods_by_name) == set(ANNEX_RPCS) | set(EXTRA_RPCS)


def test_service_has_no_package_so_paths_match_the_original() -> None:
    assert SERVICE.full_name == "MediaAnnotationServer"


@pytest.mark.parametrize("message", sorted(ANNEX_FIELDS))
def test_annex_fields_keep_names_and_numbers(message: str) -> None:
    descriptor = media_annotation_pb2.DESCRIPTOR.message_types_by_name[message]
    numbers = {f.name: f.number for f in descriptor.fields}
    for name, number in ANNEX_FIELDS[message].items():
        assert numbers.get(name) == number, f"{message}.{name} must be field {number}"


@pytest.mark.parametrize("message", ["ImageAnnotationStreamResponse", "VideoAnnotationStreamResponse"])
def test_stream_results_are_one_of(message: str) -> None:
    descriptor = media_annotation_pb2.DESCRIPTOR.message_types_by_name[message]
    oneof = descriptor.oneofs_by_name["response"]
    assert set(ANNEX_FIELDS[message]) <= {f.name for f in oneof.fields}
    assert "model_error" in {f.name for f in oneof.fields}


def test_platform_additions() -> None:
    messages = media_annotation_pb2.DESCRIPTOR.message_types_by_name
    meme = {f.name: f for f in messages["ImageMemeDetectionResponse"].fields}
    assert meme["hateful_score"].has_presence, "hateful_score must be optional (absent without a model)"
    region_request = {f.name: f for f in messages["AnnotationRequest"].fields}
    assert region_request["boxes"].message_type.name == "BoundingBox"
    embedding = {f.name for f in messages["Embedding"].fields}
    assert {"values", "dimension", "model"} <= embedding
    assert "video_data" in {f.name for f in messages["VideoFaceBlurringResponse"].fields}
    assert "asset_data" in {f.name for f in messages["ThreeDAnnotationRequest"].fields}


def test_every_message_is_defined_and_commented() -> None:
    lines = (REPO_ROOT / PROTO).read_text().splitlines()
    uncommented = [
        match.group(1)
        for i, line in enumerate(lines)
        if (match := re.match(r"\s*message (\w+) \{", line)) and not lines[i - 1].strip().startswith("//")
    ]
    assert uncommented == []
    defined = set(media_annotation_pb2.DESCRIPTOR.message_types_by_name)
    referenced = {m.input_type.name for m in SERVICE.methods} | {m.output_type.name for m in SERVICE.methods}
    assert referenced <= defined


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    for path in fresh:
        committed = REPO_ROOT / "protos" / path.name
        assert committed.read_bytes() == path.read_bytes(), (
            f"protos/{path.name} is stale: run `make protos` and commit the result"
        )
    assert {p.name for p in fresh} == set(GENERATED)
