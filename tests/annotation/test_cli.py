"""`blur-faces` (mounted by the lead as `maam blur-faces`), run as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.common.media import probe_video
from tests.annotation.face_blur.synthetic import make_video
from tests.support.processes import REPO_ROOT, child_env


def _blur_faces(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.annotation.cli", "blur-faces", *args],
        capture_output=True, text=True, env=child_env(), cwd=REPO_ROOT, timeout=300,
    )


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "in.mp4"
    path.write_bytes(make_video(160, 120, seconds=2, fps=10))
    return path


def test_blur_faces_writes_the_blurred_video(video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    done = _blur_faces(str(video), str(out), "--every", "5")
    assert done.returncode == 0, done.stderr
    assert "face track" in done.stdout and "detector ran on" in done.stdout
    assert "  video: GOP copy: " in done.stdout, done.stdout  # H.264 in MP4: face-free GOPs copied
    probe = probe_video(out.read_bytes())
    assert probe.frame_count == 20 and probe.has_audio
    assert not list(tmp_path.glob(".*partial"))


def test_full_reencode_is_asked_for_and_reported(video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    done = _blur_faces(str(video), str(out), "--every", "5", "--full-reencode")
    assert done.returncode == 0, done.stderr
    assert "  video: full re-encode of 20 frames (GOP copy turned off)" in done.stdout, done.stdout
    assert probe_video(out.read_bytes()).frame_count == 20


def test_blur_faces_explains_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    done = _blur_faces(str(bad), str(tmp_path / "out.mp4"))
    assert done.returncode == 2
    assert "could not be opened" in done.stderr
    assert not (tmp_path / "out.mp4").exists()
    done = _blur_faces(str(tmp_path / "missing.mp4"), str(tmp_path / "out.mp4"))
    assert done.returncode == 2 and "not a file" in done.stderr


def test_blur_faces_names_the_missing_model(video: Path, tmp_path: Path) -> None:
    done = _blur_faces(str(video), str(tmp_path / "out.mp4"), "--detector", "scrfd_nowhere")
    assert done.returncode == 2
    assert "maam models" in done.stderr
