"""ListCapabilities over real gRPC: which rows an installed model serves, and the command for the others."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from protos import media_annotation_pb2 as pb
from tests.annotation.conftest import service_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _rows(reply: pb.CapabilitiesResponse) -> dict[tuple[str, str], pb.TaskCapability]:
    return {(t.media, t.task): t for t in reply.tasks}


async def test_full_repository_serves_every_row_it_has_a_model_for(start_service, test_repository: Path) -> None:
    running = await start_service(service_settings(test_repository))
    rows = _rows(await running.stub.ListCapabilities(pb.CapabilitiesRequest(), timeout=10))
    assert rows[("image", "object_detection")].available
    assert rows[("image", "object_detection")].models == ["test_detector"]
    assert rows[("image", "cross_modal_embedding")].available
    # The text encoder pairs with the default image encoder: text-to-image search works.
    assert rows[("text", "cross_modal_embedding")].available
    assert rows[("image", "saliency")].available
    assert all(not r.enable_command for r in rows.values() if r.available)


async def test_absent_models_name_the_command_that_installs_them(start_service, test_repository: Path,
                                                                  tmp_path: Path) -> None:
    reduced = tmp_path / "repo"
    shutil.copytree(test_repository, reduced)
    for name in ("test_image_embedder", "test_text_embedder", "test_region_embedder", "test_captioner",
                 "test_saliency"):
        shutil.rmtree(reduced / name)
    running = await start_service(service_settings(reduced))
    rows = _rows(await running.stub.ListCapabilities(pb.CapabilitiesRequest(), timeout=10))
    image = rows[("image", "cross_modal_embedding")]
    assert not image.available and image.models == []
    assert image.enable_command == "maam models install-shipped"
    text = rows[("text", "cross_modal_embedding")]
    assert not text.available and text.enable_command == "maam models pull clip_vit_b32"
    assert rows[("image", "captioning")].enable_command == "maam models pull vit_gpt2_caption"
    # Still served: the detector, and saliency by its model-free method.
    assert rows[("image", "object_detection")].available
    saliency = rows[("image", "saliency")]
    assert saliency.available and saliency.builtin
