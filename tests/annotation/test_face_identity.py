"""Face recognition: each face's embedding is matched to the nearest identity of a configured
gallery (an .npz of names and unit vectors), only when it is close enough."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from protos import media_annotation_pb2 as pb
from services.annotation.options import AnnotationOptions
from tests.annotation.conftest import service_settings
from tests.support.media import encode_image

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_identities_from_the_gallery(start_service, test_repository: Path, photos, tmp_path: Path) -> None:
    image = pb.AnnotationRequest(asset_data=encode_image(photos["astronaut"]), model="test_face_detector")
    plain = await start_service(service_settings(test_repository))
    first = await plain.stub.ImageFaceRecognition(image)
    assert first.faces and all(not f.identity for f in first.faces)
    vectors = np.array([f.embedding.values for f in first.faces], np.float32)
    names = [f"person_{i}" for i in range(len(vectors))]
    # A far-away identity that must never win.
    far = -vectors.mean(axis=0)
    gallery = tmp_path / "gallery.npz"
    np.savez(gallery, names=np.array([*names, "stranger"]), vectors=np.vstack([vectors, far / np.linalg.norm(far)]))

    with_gallery = await start_service(
        service_settings(test_repository), options=AnnotationOptions(face_gallery=gallery, identity_threshold=0.99)
    )
    second = await with_gallery.stub.ImageFaceRecognition(image)
    assert len(second.faces) == len(first.faces)
    for face in second.faces:
        best = int(np.argmax(vectors @ np.asarray(face.embedding.values, np.float32)))
        assert face.identity == names[best] and face.identity_score > 0.99
