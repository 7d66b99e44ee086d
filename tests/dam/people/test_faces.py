"""Faces of face-recognition stream messages (pure): boxes, sizes, quality, embeddings, attributes, and video
faces linked across keyframes into tracks."""

from __future__ import annotations

from protos import media_annotation_pb2 as pb
from services.dam.people.faces import DetectedFace, faces_of, link_tracks


def _face(box, score=0.9, vector=None, gender=""):
    face = pb.Face(box=pb.BoundingBox(x_min=box[0], y_min=box[1], x_max=box[2], y_max=box[3]), score=score)
    if vector is not None:
        face.embedding.values.extend(vector)
        face.embedding.dimension = len(vector)
    if gender:
        face.attributes.gender = gender
        face.attributes.age = 30
    return face


def test_image_faces_carry_box_size_quality_embedding_and_attributes():
    message = pb.ImageFaceRecognitionResponse(model="det", embedding_model="faceres",
                                              image_size=pb.ImageSize(width=400, height=200),
                                              faces=[_face((0.1, 0.1, 0.3, 0.5), 0.8, [1.0, 0.0], "female"),
                                                     _face((0.5, 0.5, 0.55, 0.6), 0.9)])
    big, small = faces_of(message)
    assert abs(big.size_px - 80) < 1e-3  # the shorter side: 0.2 x 400 = 80 px wide, 0.4 x 200 = 80 px high
    assert abs(big.quality - 0.8) < 1e-6  # 80 px: full size weight
    assert big.embedding == [1.0, 0.0] and big.embedding_model == "faceres"
    assert big.attributes["gender"] == "female"
    assert small.embedding is None and small.embedding_model == ""
    assert abs(small.size_px - 20) < 1e-3 and abs(small.quality - 0.9 * 20 / 80) < 1e-6


def test_other_messages_have_no_faces():
    assert faces_of(pb.ImageCaptioningResponse(caption="a face")) == []


def test_video_faces_are_linked_by_appearance_across_keyframes():
    a, b = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    message = pb.VideoFaceRecognitionResponse(video=pb.VideoInfo(width=100, height=100), frames=[
        pb.FrameFaces(frame_index=0, timestamp=0.0, faces=[_face((0.1, 0.1, 0.3, 0.3), vector=a)]),
        # Another shot: the same person elsewhere in the frame, and someone new.
        pb.FrameFaces(frame_index=8, timestamp=1.0, faces=[_face((0.6, 0.6, 0.8, 0.8), vector=[0.9, 0.1, 0.0]),
                                                            _face((0.1, 0.1, 0.3, 0.3), vector=b)]),
    ])
    faces = faces_of(message)
    assert [(f.frame_index, f.timestamp) for f in faces] == [(0, 0.0), (8, 1.0), (8, 1.0)]
    assert faces[0].track == faces[1].track != faces[2].track


def test_without_embeddings_tracks_follow_overlapping_boxes():
    faces = [DetectedFace([0.1, 0.1, 0.3, 0.3], 0.9, 50, frame_index=0),
             DetectedFace([0.12, 0.1, 0.32, 0.3], 0.9, 50, frame_index=1),
             DetectedFace([0.7, 0.7, 0.9, 0.9], 0.9, 50, frame_index=1)]
    link_tracks(faces)
    assert faces[0].track == faces[1].track != faces[2].track
