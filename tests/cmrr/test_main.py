"""`maam serve cmrr` as a process: its port and encoder family from MAAM_CMRR__PORT / MAAM_CMRR__MODEL (the
original `.env`'s PORT and MODEL are refused with the new names)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam


def test_serve_reads_port_and_model_from_the_environment(test_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    env = child_env(MAAM_CMRR__PORT=str(port), MAAM_CMRR__MODEL="clip", MAAM_DATA_DIR=str(tmp_path),
                    MAAM_MODEL_REPOSITORY=str(test_repository))
    server = ServiceProcess(maam("serve", "cmrr"), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_ready(http_healthy(url), timeout=120, what="cmrr")
        response = httpx.post(url + "/mv_retrieval/v0.1/add_content", params={"id": "1", "type": "text", "user": "u"},
                              content=b"hello")
        assert response.status_code == 200
        assert httpx.get(url + "/mv_retrieval/v0.1/info").json()["encoders"]["family"] == "clip"
    finally:
        assert server.stop() in (0, -15)
    assert (tmp_path / "cmrr" / "cmrr.sqlite3").is_file() and list((tmp_path / "cmrr" / "indexes").glob("*-text.faiss"))


def test_a_bad_model_setting_stops_with_a_clear_message(tmp_path: Path) -> None:
    env = child_env(MAAM_CMRR__MODEL="gpt", MAAM_DATA_DIR=str(tmp_path), MAAM_CMRR__PORT=str(free_port()))
    done = subprocess.run(maam("serve", "cmrr"), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "bad setting: MAAM_CMRR__MODEL: Input should be 'clip' or 'albef'" in done.stdout + done.stderr


@pytest.mark.parametrize(("old", "new"), [("MODEL", "MAAM_CMRR__MODEL"), ("PORT", "MAAM_CMRR__PORT")])
def test_the_original_env_names_are_refused_with_the_new_ones(tmp_path: Path, old: str, new: str) -> None:
    env = child_env(**{old: "clip" if old == "MODEL" else str(free_port())}, MAAM_DATA_DIR=str(tmp_path))
    done = subprocess.run(maam("serve", "cmrr"), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"{old} is now {new}" in " ".join((done.stdout + done.stderr).split())
