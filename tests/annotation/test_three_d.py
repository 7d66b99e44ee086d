"""ThreeDAnnotation: every supported format loads, geometry facts are right, views are rendered
offscreen and annotated as images."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from protos import media_annotation_pb2 as pb
from services.annotation.three_d import render
from tests.annotation.conftest import Running

pytestmark = pytest.mark.asyncio(loop_scope="session")


def exported(mesh: trimesh.Trimesh, kind: str) -> bytes:
    if kind == "gltf":
        from trimesh.exchange.gltf import export_gltf

        files = export_gltf(trimesh.Scene(mesh), embed_buffers=True)
        return files["model.gltf"]
    data = mesh.export(file_type=kind)
    return data.encode() if isinstance(data, str) else data


@pytest.mark.parametrize("kind", ["obj", "off", "ply", "stl", "glb", "gltf"])
async def test_every_format_gives_geometry_and_views(service: Running, kind: str) -> None:
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    reply = await service.stub.ThreeDAnnotation(
        pb.ThreeDAnnotationRequest(asset_data=exported(box, kind), asset_type=kind, views=3)
    )
    assert reply.status == 0, reply.error_msg
    geometry = reply.geometry
    assert geometry.face_count == 12 and geometry.vertex_count == 8 and geometry.mesh_count == 1
    assert abs(geometry.surface_area - 7.0) < 1e-3  # 2 * (2*1 + 2*0.5 + 1*0.5)
    # Closed in every format, STL's triangle soup (36 corners, 8 positions) included.
    assert geometry.is_watertight and abs(geometry.volume - 2 * 1 * 0.5) < 1e-3
    assert np.allclose(geometry.bounds, [-1, -0.5, -0.25, 1, 0.5, 0.25], atol=1e-5)
    assert [v.azimuth for v in reply.views] == [0, 120, 240]
    for view in reply.views:
        image = np.asarray(Image.open(io.BytesIO(view.png)))
        assert image.shape == (320, 320, 3) and (image < 250).any()  # the object is drawn
        assert view.annotations.status == 0 and "test_detector" in view.annotations.valid_models
    assert "test_detector" in reply.valid_models
    assert reply.labels and [x.score for x in reply.labels] == sorted((x.score for x in reply.labels), reverse=True)


@pytest.mark.parametrize("kind", ["obj", "stl"])
async def test_an_open_mesh_is_not_watertight_and_has_no_volume(service: Running, kind: str) -> None:
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    lidless = trimesh.Trimesh(box.vertices, box.faces[:-2], process=False)  # one side's two triangles gone
    reply = await service.stub.ThreeDAnnotation(
        pb.ThreeDAnnotationRequest(asset_data=exported(lidless, kind), asset_type=kind, views=1)
    )
    assert reply.status == 0, reply.error_msg
    assert reply.geometry.face_count == 10 and not reply.geometry.is_watertight and reply.geometry.volume == 0.0


async def test_renderer_draws_nearer_faces_over_farther_ones() -> None:
    # Two parallel squares facing the camera: the nearer one is shaded the same but must cover
    # the farther one, so the centre pixel comes from the near square (its own grey level).
    near = trimesh.creation.box(extents=(1.0, 1.0, 0.01))
    far = trimesh.creation.box(extents=(2.0, 2.0, 0.01))
    far.apply_translation((0, 0, -1))
    scene = trimesh.util.concatenate([near, far])
    image = render(np.asarray(scene.vertices), np.asarray(scene.faces), 0.0, 0.0, 64)
    assert (image[32, 32] < 255).all() and (image[2, 2] == 255).all()
    silhouette = (image < 255).any(axis=2)
    assert 0.2 < silhouette.mean() < 0.9


async def test_gltf_without_buffers_is_refused_clearly(service: Running) -> None:
    gltf = json.dumps({"asset": {"version": "2.0"}, "meshes": []}).encode()
    reply = await service.stub.ThreeDAnnotation(pb.ThreeDAnnotationRequest(asset_data=gltf, asset_type="gltf"))
    assert reply.status == 3 and reply.error_msg
