"""Face detection (SCRFD) and face embedding (ArcFace) from InsightFace's model packs. InsightFace
publishes these weights as ONNX only (no framework checkpoint to export), so `pull` downloads the
pack, checks each graph against its task and installs it with a generated Triton config.
Licence: InsightFace's pretrained models are for non-commercial research use only."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from services.models.errors import ModelsError, fetching
from services.models.importer import import_onnx

PACK_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7/{pack}.zip"
LICENSE = "InsightFace pretrained models: non-commercial research use only (see insightface's README)"
# buffalo_l: SCRFD-10GF detector and ArcFace ResNet-50 trained on WebFace600K.
PACKS = {"buffalo_l": ("det_10g.onnx", "w600k_r50.onnx")}

# The keys services/annotation/face_detection/dnn.py (ScrfdParams) reads: (pixel - 127.5) / 128,
# RGB, the input letterboxed into 640 x 640 as insightface's det_size.
SCRFD_PARAMS = {
    "input_size": 640,
    "mean": 127.5,
    "std": 128.0,
    "strides": [8, 16, 32],
    "num_anchors": 2,
    "score_threshold": 0.5,
    "nms_threshold": 0.4,
    "format": "scrfd",
}
# The face embedder (ImageEmbedder) works on RGB in [0, 1]: insightface's (pixel - 127.5) / 127.5 is
# (x - 0.5) / 0.5 per channel. Faces with SCRFD's five landmarks are first aligned to ArcFace's
# 112 x 112 template (services/annotation/models/face_align.py); others (Haar, MediaPipe) are box crops.
ARCFACE_PARAMS = {
    "input_size": 112,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "resize": "stretch",
    "alignment": "arcface_5pt",
    "normalized": False,
}


def install_faces(
    repository: Path, detector: Path, embedder: Path, *, source: str = "pulled", license: str = LICENSE,
    names: tuple[str, str] = ("scrfd_10g", "arcface_r50"),
) -> list[str]:
    """Installs an SCRFD detector and an ArcFace embedder from their ONNX files."""
    det_name, rec_name = names
    import_onnx(
        repository, det_name, detector, "face_detection", params=SCRFD_PARAMS, source=source, license=license,
        description="SCRFD face detector (InsightFace)", replace=True,
    )
    import_onnx(
        repository, rec_name, embedder, "face_embedding", params=ARCFACE_PARAMS, source=source, license=license,
        description="ArcFace face embedding (InsightFace)", replace=True,
    )
    return [det_name, rec_name]


def pull_faces(repository: Path, upstream, pack: str = "buffalo_l") -> list[str]:
    import httpx

    det_file, rec_file = PACKS[pack]
    url = upstream.id
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / f"{pack}.zip"
        with (
            fetching(f"InsightFace model pack {pack} ({url})", host="github.com"),
            httpx.stream("GET", url, follow_redirects=True, timeout=60) as response,
        ):
            response.raise_for_status()
            with archive.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        try:
            with zipfile.ZipFile(archive) as zf:
                members = {Path(m).name: m for m in zf.namelist()}
                for wanted in (det_file, rec_file):
                    if wanted not in members:
                        raise ModelsError(f"{url}: {wanted} is missing from the pack")
                    zf.extract(members[wanted], tmp)
        except zipfile.BadZipFile as exc:
            raise ModelsError(f"{url}: the download is not a zip archive: {exc}") from exc
        return install_faces(
            repository, Path(tmp) / members[det_file], Path(tmp) / members[rec_file]
        )
