"""Pure parts of the DAM: password hashing, the blob store, parsing annotation messages, retry backoff."""

from __future__ import annotations

import hashlib

import pytest

from protos import media_annotation_pb2 as pb
from services.dam.annotation.results import doc_fields, parse_stream_message
from services.dam.annotation.worker import backoff_seconds
from services.dam.blobstore import BlobStore, BlobTooLargeError
from services.dam.core.security import hash_password, token_digest, verify_password


def test_password_hashes_are_salted_and_verify():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$32768$8$1$")
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct horsE", first)
    assert not verify_password("x", "garbage") and not verify_password("x", "bcrypt$1$2$3$4$5")
    assert token_digest("abc") == hashlib.sha256(b"abc").hexdigest()


def test_blob_store_addresses_by_content_and_caps_size(tmp_path):
    store = BlobStore(tmp_path)
    sha = store.put(b"hello")
    assert sha == hashlib.sha256(b"hello").hexdigest()
    assert store.path(sha) == tmp_path / sha[:2] / sha[2:4] / sha and store.read(sha) == b"hello"
    assert store.put(b"hello") == sha  # the same content is stored once
    writer = store.writer(max_bytes=10)
    writer.write(b"12345")
    with pytest.raises(BlobTooLargeError, match="limit"):
        writer.write(b"678901")
    assert list(store.tmp_dir.iterdir()) == []
    with pytest.raises(ValueError, match="sha256"):
        store.path("../../etc/passwd")
    store.delete(sha)
    assert not store.exists(sha)


def test_each_stream_message_becomes_one_model_result():
    embedding = pb.Embedding(values=[0.6, 0.8], dimension=2, model="clip", normalized=True)
    regions = pb.ImageRegionFeatureExtractionResponse(
        model="regions", whole_image=embedding,
        regions=[pb.RegionFeature(box=pb.BoundingBox(x_min=0.1, y_min=0.2, x_max=0.5, y_max=0.6), label="flag",
                                  embedding=embedding)])
    result = parse_stream_message(pb.ImageAnnotationStreamResponse(image_region_feature_extraction_result=regions))
    assert result.ok and result.model == "regions" and result.task == "region_features"
    assert [(v.kind, v.model, v.label) for v in result.vectors] == [("image", "clip", None), ("region", "clip", "flag")]
    assert result.vectors[1].box == pytest.approx([0.1, 0.2, 0.5, 0.6])
    assert "values" not in str(result.data)  # vectors are stored apart from the JSON
    failed = parse_stream_message(pb.ImageAnnotationStreamResponse(model_error=pb.ModelError(
        model="ocr_model", task="ocr", status=4, error_msg="deadline")))
    assert not failed.ok and failed.model == "ocr_model" and "deadline" in failed.error
    assert parse_stream_message(pb.ImageAnnotationStreamResponse()) is None


def test_search_fields_come_from_captions_ocr_moderation_and_objects():
    def data(message) -> dict:
        return parse_stream_message(message).data

    caption = data(pb.ImageAnnotationStreamResponse(image_captioning_result=pb.ImageCaptioningResponse(
        model="cap", caption="gargoyles on a roof", alternatives=["stone figures"])))
    ocr = data(pb.ImageAnnotationStreamResponse(image_text_recognition_result=pb.ImageTextRecognitionResponse(
        model="ocr", full_text="FERRY TERMINAL")))
    nsfw = data(pb.ImageAnnotationStreamResponse(image_nsfw_detection_result=pb.ImageNSFWDetectionResponse(
        model="nsfw", score=0.9, is_nsfw=True)))
    meme = data(pb.ImageAnnotationStreamResponse(image_meme_detection_result=pb.ImageMemeDetectionResponse(
        model="meme", score=0.1, is_meme=False)))
    faces = data(pb.ImageAnnotationStreamResponse(image_face_recognition_result=pb.ImageFaceRecognitionResponse(
        model="faces", faces=[pb.Face(score=0.9), pb.Face(score=0.8)])))
    objects = data(pb.VideoAnnotationStreamResponse(video_object_detection_result=pb.VideoObjectDetectionResponse(
        model="det", frames=[pb.FrameDetections(detections=[pb.Detection(label="dog", score=0.9),
                                                            pb.Detection(label="cat", score=0.1)])])))
    fields = doc_fields([("captioning", "done", caption), ("ocr", "done", ocr), ("nsfw", "done", nsfw),
                         ("meme", "done", meme), ("face_recognition", "done", faces),
                         ("object_detection", "done", objects), ("disturbing", "failed", None)], 0.3)
    assert fields["captions"] == "gargoyles on a roof\nstone figures"
    assert fields["ocr_text"] == "FERRY TERMINAL"
    assert fields["nsfw"] is True and fields["meme"] is False and fields["disturbing"] is None
    assert fields["faces"] == 2 and fields["objects"] == ["dog"]
    assert fields["annotation_types"] == ["captioning", "face_recognition", "meme", "nsfw", "object_detection",
                                          "ocr"]


def test_backoff_grows_and_is_capped():
    delays = [backoff_seconds(n, 1.0, 30.0) for n in range(1, 10)]
    assert 0.5 <= delays[0] <= 1.0 and 4.0 <= delays[3] <= 8.0
    assert all(d <= 30.0 for d in delays) and delays[-1] >= 15.0


def test_web_search_syntax_parses_as_websearch_to_tsquery_reads_it():
    from services.dam.search.query_syntax import Term, parse

    assert parse('"stone statues" or ferry -boat') == [
        [Term("stone statues", phrase=True)], [Term("ferry"), Term("boat", negated=True)]]
    assert parse("a b OR c") == [[Term("a"), Term("b")], [Term("c")]]
    assert parse("or boat or") == [[Term("boat")]]  # a dangling OR is no operator
    assert parse('-"notre dame" cat-dog "unclosed') == [
        [Term("notre dame", phrase=True, negated=True), Term("cat-dog"), Term("unclosed", phrase=True)]]
    assert parse("  ") == []


def test_the_default_space_follows_preference_then_whole_image_models_then_coverage():
    from services.dam.spaces import choose

    coverage = {"clip": 10, "visual": 12, "regions": 50}
    assert choose(["clip", "visual", "regions"], ["clip"], coverage, ["clip", "visual"]) == "clip"
    assert choose(["clip", "visual", "regions"], [], coverage, ["clip", "visual"]) == "visual"
    assert choose(["clip", "regions"], ["missing"], {"clip": 3, "regions": 3}, []) == "clip"  # a tie: by name
    assert choose([], ["clip"], coverage) is None


def test_the_retired_embedding_dim_setting_fails_with_the_new_way(monkeypatch):
    from services.dam.core.config import DamSettings

    monkeypatch.setenv("MAAM_DAM__EMBEDDING_DIM", "512")
    with pytest.raises(ValueError, match=r"retired.*MAAM_DAM__EMBEDDING_SPACES"):
        DamSettings()
