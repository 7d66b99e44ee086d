"""The `VideoFaceBlurring` RPC and `maam blur-faces` run the same code (face_blur.blur_video): for
the same video, detector and options they write the same bytes and report the same GOP copy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from protos import media_annotation_pb2 as pb
from services.models.shipped import install_haar
from tests.annotation.conftest import service_settings
from tests.annotation.face_blur.synthetic import Appearance, make_video
from tests.support.processes import REPO_ROOT, child_env

pytestmark = pytest.mark.asyncio(loop_scope="session")

EVERY = 5


async def test_rpc_and_cli_write_the_same_video(start_service, tmp_path: Path) -> None:
    # The astronaut on frames 14-22 of 40 (one-second GOPs): GOPs 0 and 3 have no face.
    scenario = [Appearance("astronaut", 14, 22, 0.2, 0.1, 0.35, 0.1, 0.8)]
    video = make_video(160, 120, seconds=4, fps=10, scenario=scenario)
    source = tmp_path / "in.mp4"
    source.write_bytes(video)

    repository = tmp_path / "models"
    install_haar(repository)  # the service's Haar detector, the one `--detector haar` opens
    running = await start_service(service_settings(repository))
    reply = await running.stub.VideoFaceBlurring(pb.AnnotationRequest(
        asset_data=video, model="haar_face", video_options=pb.VideoOptions(face_check_every=EVERY)))

    out = tmp_path / "out.mp4"
    done = subprocess.run(
        [sys.executable, "-m", "services.annotation.cli", "blur-faces", str(source), str(out),
         "--detector", "haar", "--every", str(EVERY)],
        capture_output=True, text=True, env=child_env(), cwd=REPO_ROOT, timeout=300,
    )
    assert done.returncode == 0, done.stderr

    assert reply.encoding.startswith("GOP copy: 2 of 4 GOPs (20 of 40 frames) copied"), reply.encoding
    assert reply.frames_copied == 20
    assert f"  video: {reply.encoding}\n" in done.stdout
    assert out.read_bytes() == reply.video_data, "the same pipeline writes the same bytes"
    tracks = [f"  frames {t.start_frame}-{t.end_frame} " for t in reply.tracks]
    assert tracks and all(t in done.stdout for t in tracks)
    assert f"detector ran on {reply.frames_checked} frame(s)" in done.stdout
