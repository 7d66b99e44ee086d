"""A DAM on the real packaged face models: the MediaPipe face detector and the FaceRes descriptor
(`maam models install-shipped`), installed here from the shared model cache, served by the real
annotation service over gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.settings import get_settings
from services.models.packaged.install import install_packaged
from tests.dam.annotation_server import AnnotationProcess
from tests.dam.conftest import Dam, start_dam
from tests.support.processes import free_port

FACE_MODELS = ("mediapipe_face", "faceres")


@pytest.fixture(scope="session")
def face_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("face_models")
    installed, _, failed = install_packaged(root, Path(get_settings().cache_dir), names=FACE_MODELS, report=print)
    assert not failed, failed  # a fetch / conversion / verification failure, with its reason
    assert sorted(installed) == sorted(FACE_MODELS)
    return root


@pytest.fixture(scope="session")
def face_annotation(face_repository: Path) -> Iterator[AnnotationProcess]:
    server = AnnotationProcess(face_repository, free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def people_dam(tmp_path_factory: pytest.TempPathFactory, pg_server_uri: str,
               face_annotation: AnnotationProcess) -> Iterator[Dam]:
    instance = start_dam(tmp_path_factory.mktemp("dam-people"), pg_server_uri, face_annotation.port,
                         face_annotation.repository, MAAM_DAM__MAX_UPLOAD_MB="20")
    yield instance
    instance.process.stop()
