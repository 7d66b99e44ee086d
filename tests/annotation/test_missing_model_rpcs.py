"""Over a real gRPC channel, a service whose repository holds models for other tasks but none for actions,
disturbing content, memes or tags answers those RPCs FAILED_PRECONDITION with the pull that installs one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import grpc
import pytest

from protos import media_annotation_pb2 as pb
from tests.annotation.conftest import Running, service_settings
from tests.support.test_models import write_test_repository

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The repository tasks of the RPCs below: their test models are taken out of the repository.
REMOVED_TASKS = {"disturbing_classification", "meme_classification", "hateful_meme_classification",
                 "action_recognition", "video_action_recognition", "image_tagging"}
CLIP_ZEROSHOT = "`maam models pull clip_vit_b32` then `maam models pull clip_zeroshot`"
KINETICS = "`maam models pull kinetics_r2plus1d_18`"


@pytest.fixture(scope="module")
def partial_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_test_repository(tmp_path_factory.mktemp("partial_models"))
    removed = []
    for sidecar in root.glob("*/maam.json"):
        if json.loads(sidecar.read_text())["task"] in REMOVED_TASKS:
            shutil.rmtree(sidecar.parent)
            removed.append(sidecar.parent.name)
    # Every removed task had a test model, so the repository really lacked only these.
    assert len(removed) == 5, removed
    return root


@pytest.mark.parametrize(("rpc", "media", "hint", "not_named"), [
    pytest.param(rpc, media, hint, not_named, id=rpc) for rpc, media, hint, not_named in (
        ("ImageDisturbingContentDetection", "image", CLIP_ZEROSHOT, "kinetics"),
        ("VideoDisturbingContentDetection", "video", CLIP_ZEROSHOT, "kinetics"),
        ("ImageMemeDetection", "image", CLIP_ZEROSHOT, "kinetics"),
        ("ImageTagging", "image", CLIP_ZEROSHOT, "kinetics"),
        ("ImageActionRecognition", "image", KINETICS, "clip_zeroshot"),
        ("VideoActionRecognition", "video", KINETICS, "clip_zeroshot"),
    )
])
async def test_a_missing_model_answers_failed_precondition_naming_its_pull(
    start_service, partial_repository: Path, jpeg: bytes, video: bytes,
    rpc: str, media: str, hint: str, not_named: str,
) -> None:
    running: Running = await start_service(service_settings(partial_repository))
    # The service runs the models it has: the request itself is fine, only the model is missing.
    served = await running.stub.ImageObjectDetection(pb.AnnotationRequest(asset_data=jpeg))
    assert served.model == "test_detector"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(running.stub, rpc)(pb.AnnotationRequest(asset_data=jpeg if media == "image" else video))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
    assert rpc in err.value.details() and hint in err.value.details(), err.value.details()
    assert not_named not in err.value.details()
