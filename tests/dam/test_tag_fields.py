"""Tags (ImageTagging, the CLIP zero-shot tags head) are indexed like objects and captions: the
search document's objects facet and full text carry them."""

from __future__ import annotations

from protos import media_annotation_pb2 as pb
from services.dam.annotation.results import doc_fields, parse_stream_message


def test_tags_feed_the_objects_facet_and_the_full_text() -> None:
    result = parse_stream_message(pb.ImageAnnotationStreamResponse(image_tagging_result=pb.ImageTaggingResponse(
        model="clip_zeroshot_tags", threshold=0.1,
        tags=[pb.Label(label="beach", score=0.6), pb.Label(label="dog", score=0.2)])))
    assert result is not None and result.task == "tagging" and result.model == "clip_zeroshot_tags"
    fields = doc_fields([("tagging", "done", result.data)], 0.3)
    assert fields["objects"] == ["beach", "dog"]  # the head already kept only tags above its threshold
    assert "beach" in fields["captions"].split("\n") and fields["annotation_types"] == ["tagging"]
