"""`maam serve cmrr` as a process: PORT and MODEL from the environment, as the original `.env` had them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from services.cmrr.main import resolve_port
from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam


def test_serve_reads_port_and_model_from_the_environment(test_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    env = child_env(
        PORT=str(port), MODEL="clip", MAAM_DATA_DIR=str(tmp_path), MAAM_MODEL_REPOSITORY=str(test_repository)
    )
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
    env = child_env(MODEL="gpt", MAAM_DATA_DIR=str(tmp_path), PORT=str(free_port()))
    done = subprocess.run(maam("serve", "cmrr"), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "MODEL is clip or albef" in done.stdout + done.stderr


def test_port_precedence(monkeypatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    assert resolve_port(8007) == 8007
    monkeypatch.setenv("PORT", "9123")
    assert resolve_port(8007) == 9123  # `maam serve cmrr` passes the default: PORT wins
    assert resolve_port(9999) == 9999  # an explicit --port wins over PORT
