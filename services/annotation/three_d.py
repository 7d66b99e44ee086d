"""3D models: loaded with trimesh (obj, off, ply, stl, glb, gltf), described by their geometry and
rendered offscreen from several directions by a small software renderer (painter's algorithm
with Lambert shading, drawn with PIL), so the views can be annotated as images. No GPU needed."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from protos import media_annotation_pb2 as pb
from services.common.media import MODEL_3D_TYPES, MediaError


@dataclass(frozen=True)
class View:
    azimuth: float
    elevation: float
    rgb: np.ndarray


def load_mesh(data: bytes, asset_type: str, max_faces: int):
    """A single trimesh.Trimesh (scene geometry concatenated in world space) and the mesh count."""
    import trimesh

    kind = asset_type.lower().lstrip(".")
    if kind not in MODEL_3D_TYPES:
        raise MediaError(
            f"unknown 3D format {asset_type!r}; asset_type must be one of {', '.join(sorted(MODEL_3D_TYPES))}"
        )
    if not data:
        raise MediaError("the 3D model is empty (0 bytes)")
    try:
        loaded = trimesh.load(io.BytesIO(data), file_type=kind, force=None, process=False)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise MediaError(f"the {kind} file could not be read: {exc}") from exc
    if isinstance(loaded, trimesh.Scene):
        meshes = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh)]
        count = len(meshes)
        mesh = trimesh.util.concatenate(meshes) if meshes else None
    else:
        mesh, count = loaded, 1
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise MediaError(f"the {kind} file holds no triangle mesh")
    if len(mesh.faces) > max_faces:
        raise MediaError(f"the 3D model has {len(mesh.faces):,} faces, over the {max_faces:,}-face limit")
    return mesh, count


def mesh_info(mesh, mesh_count: int) -> pb.MeshInfo:
    """Geometry facts of the welded mesh: vertices at one position count once, so a triangle soup (STL stores
    each triangle's own corners) is watertight, and has a volume, when its surface is closed."""
    import trimesh

    mesh = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)
    watertight = bool(mesh.is_watertight)
    return pb.MeshInfo(
        vertex_count=len(mesh.vertices),
        face_count=len(mesh.faces),
        is_watertight=watertight,
        surface_area=float(mesh.area),
        volume=float(abs(mesh.volume)) if watertight else 0.0,
        bounds=[float(v) for v in np.asarray(mesh.bounds).reshape(-1)],
        mesh_count=mesh_count,
    )


def _rotation(azimuth: float, elevation: float) -> np.ndarray:
    """World -> camera rotation for a camera circling the vertical (y) axis."""
    az, el = math.radians(azimuth), math.radians(elevation)
    ry = np.array([[math.cos(az), 0, -math.sin(az)], [0, 1, 0], [math.sin(az), 0, math.cos(az)]])
    rx = np.array([[1, 0, 0], [0, math.cos(el), -math.sin(el)], [0, math.sin(el), math.cos(el)]])
    return rx @ ry


def render(vertices: np.ndarray, faces: np.ndarray, azimuth: float, elevation: float, size: int) -> np.ndarray:
    """Orthographic view, farthest faces drawn first, grey Lambert shading on a white ground."""
    centred = vertices - (vertices.max(axis=0) + vertices.min(axis=0)) / 2
    radius = float(np.linalg.norm(centred, axis=1).max()) or 1.0
    cam = centred @ _rotation(azimuth, elevation).T / radius  # in [-1, 1]
    tri = cam[faces]  # F, 3, 3
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    normals = normals / np.where(lengths > 0, lengths, 1)[:, None]
    light = np.array([0.3, 0.5, 1.0]) / np.linalg.norm([0.3, 0.5, 1.0])
    # Faces are seen from +z; two-sided lighting so inconsistent winding still shades.
    shade = 0.25 + 0.75 * np.abs(normals @ light)
    order = np.argsort(tri[:, :, 2].mean(axis=1))  # far (small z) first
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    scale = size * 0.45
    xy = np.stack([size / 2 + tri[:, :, 0] * scale, size / 2 - tri[:, :, 1] * scale], axis=2)
    for i in order:
        grey = int(40 + 200 * shade[i])
        draw.polygon([tuple(p) for p in xy[i]], fill=(grey, grey, int(min(255, grey * 1.05))))
    return np.asarray(image)


def render_views(mesh, views: int, size: int) -> list[View]:
    """`views` directions evenly around the object at 20 degrees above the horizon."""
    vertices, faces = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)
    out = []
    for k in range(views):
        azimuth = 360.0 * k / views
        out.append(View(azimuth, 20.0, render(vertices, faces, azimuth, 20.0, size)))
    return out
