"""One atomic, durable file write for every service: the old file or the new one survives any crash."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.common import atomic_files
from services.common.atomic_files import atomic_write, fsync_directory
from tests.support.processes import REPO_ROOT, child_env


def test_write_replaces_by_rename_and_fsyncs_the_file_and_its_directory(tmp_path: Path, monkeypatch):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    replaced: list[tuple[str, str]] = []
    synced: list[int] = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((str(a), str(b))), real_replace(a, b))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    [(source, dest)] = replaced
    assert dest == str(target) and Path(source).parent == tmp_path and Path(source).name.endswith(".tmp")
    assert len(synced) == 2  # the temp file, then the directory
    atomic_write(target, lambda handle: handle.write(b"streamed"))
    assert target.read_bytes() == b"streamed"


def test_a_failure_before_the_rename_keeps_the_old_file_and_no_temp(tmp_path: Path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def torn(handle) -> None:
        handle.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, torn)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


def test_sigkill_mid_write_leaves_the_old_file(tmp_path: Path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from services.common.atomic_files import atomic_write

        def die(handle):
            handle.write(b"new but torn"); handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        atomic_write(Path({str(target)!r}), die)
    """)
    result = subprocess.run([sys.executable, "-c", script], env=child_env(), cwd=REPO_ROOT, timeout=60)
    assert result.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old"


@pytest.mark.parametrize(("code", "ignored"), [(errno.EINVAL, True), (errno.ENOTSUP, True), (errno.EIO, False)])
def test_directory_fsync_ignores_only_unsupported(tmp_path: Path, monkeypatch, code: int, ignored: bool):
    def refuses(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic_files.os, "fsync", refuses)
    if ignored:
        fsync_directory(tmp_path)
    else:
        with pytest.raises(OSError):
            fsync_directory(tmp_path)
