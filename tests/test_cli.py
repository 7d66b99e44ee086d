"""The `maam` command line: help, model listing, serve options, `maam up` with health checks."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from services.cli import SERVICES, up_environment
from tests.support.processes import ServiceProcess, child_env, free_port, maam


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(maam(*args), capture_output=True, text=True, env=child_env(**env), timeout=120)


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("up", "serve", "models", "triton", "health"):
        assert command in result.stdout


def test_models_list_json(test_repository: Path) -> None:
    result = run("models", "list", "--json", "--repository", str(test_repository))
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    rows = {row["name"]: row for row in listing["models"]}
    assert rows["test_detector"]["task"] == "object_detection"
    assert rows["test_detector"]["installed"] is True
    assert rows["test_detector"]["source"] == "test"
    assert rows["test_detector"]["size_bytes"] > 10_000


def test_models_list_table_shows_uninstalled(test_repository: Path, tmp_path: Path) -> None:
    model = tmp_path / "test_classifier"
    model.mkdir()
    for name in ("config.pbtxt", "maam.json"):
        (model / name).write_text((test_repository / "test_classifier" / name).read_text())
    result = run("models", "list", "--repository", str(tmp_path), COLUMNS="200")
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if "test_classifier" in ln)
    assert "classification" in line and " no " in line


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_serve_command_takes_host_and_port(service: str) -> None:
    result = run("serve", service, "--help", COLUMNS="200")
    assert result.returncode == 0, result.stderr
    assert "--host" in result.stdout and "--port" in result.stdout


def test_health_fails_on_a_dead_port() -> None:
    result = run("health", "--target", f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert result.returncode == 1


def test_up_starts_the_annotation_server(test_repository: Path, tmp_path: Path) -> None:
    ports = {f"MAAM_{name.upper()}__PORT": str(free_port()) for name in SERVICES}
    env = child_env(MAAM_MODEL_REPOSITORY=str(test_repository), MAAM_DATA_DIR=str(tmp_path), **ports)
    up = ServiceProcess(maam("up"), env=env)
    target = f"127.0.0.1:{ports['MAAM_ANNOTATION__PORT']}"
    try:
        up.wait_ready(
            lambda: run("health", "--target", target, "--timeout", "1").returncode == 0,
            timeout=120,
            what="annotation health SERVING",
        )
        result = run("health", "--target", target, "--service", "MediaAnnotationServer")
        assert result.returncode == 0 and "SERVING" in result.stdout
        # Once every service answers: the banner (URLs, first account admin, capabilities), logs in files.
        up.wait_ready(lambda: "MAAM is up." in up.output, timeout=120, what="the banner")
        output = up.output
        assert f"http://127.0.0.1:{ports['MAAM_DAM__PORT']}/" in output and "first account" in output
        assert "object detection (image)" in output and "Capabilities" in output
        assert (tmp_path / "logs" / "dam.log").stat().st_size > 0
        assert '"level"' not in output  # the services' JSON logs went to their files
    finally:
        code = up.stop()
    assert code == 0, up.output


def test_up_fails_when_a_service_fails_on_its_own(test_repository: Path, tmp_path: Path) -> None:
    """A service that dies by itself (here: its port is taken) stops the others and `up` exits 1;
    services ended by `up`'s own stop (even mid-startup) are not failures (the test above)."""
    ports = {f"MAAM_{name.upper()}__PORT": str(free_port()) for name in SERVICES}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports["MAAM_CMRR__PORT"] = str(taken.getsockname()[1])
        env = child_env(MAAM_MODEL_REPOSITORY=str(test_repository), MAAM_DATA_DIR=str(tmp_path), **ports)
        up = ServiceProcess(maam("up"), env=env)
        up.proc.wait(120)
        code = up.stop()
    assert code == 1, up.output
    assert "cmrr exited with" in up.output and "stopping the others" in up.output


@pytest.mark.parametrize(
    ("args", "old", "new"),
    [
        (("models", "list"), "MAAM_TRITON_URL", "MAAM_INFERENCE__TRITON_URL"),
        (("serve", "annotation"), "MAAM_ANNOTATION_MODEL_TIMEOUT_S", "MAAM_ANNOTATION__MODEL_TIMEOUT_S"),
        (("serve", "dam"), "MAAM_DATABASE_URL", "MAAM_DAM__DATABASE_URL"),
        (("serve", "ndd"), "MAAM_NDD_MAX_UPLOAD_MB", "MAAM_NDD__MAX_UPLOAD_MB"),
        (("serve", "cmrr"), "MODEL", "MAAM_CMRR__MODEL"),
        (("up",), "MAAM_LOG_LEVEL", "MAAM_LOG__LEVEL"),
        (("up",), "PORT", "MAAM_CMRR__PORT"),  # `up` starts CMRR, so CMRR's old names count
    ],
)
def test_old_setting_names_stop_every_command_with_the_new_name(args: tuple[str, ...], old: str, new: str,
                                                                tmp_path: Path) -> None:
    result = run(*args, **{old: "1", "MAAM_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{old} is now {new}" in " ".join((result.stdout + result.stderr).split())


def test_a_bare_model_variable_is_no_business_of_the_other_commands(test_repository: Path) -> None:
    result = run("models", "list", "--json", "--repository", str(test_repository), MODEL="clip")
    assert result.returncode == 0, result.stderr


def test_bad_settings_stop_a_service_with_the_variable_named(tmp_path: Path) -> None:
    result = run("serve", "dam", MAAM_DAM__MAX_UPLOAD_MB="600", MAAM_DATA_DIR=str(tmp_path))
    assert result.returncode == 2
    output = " ".join((result.stdout + result.stderr).split())
    assert "bad setting" in output and "MAAM_DAM__MAX_UPLOAD_MB (600) is above MAAM_MEDIA__MAX_FETCH_MB (512)" in output


def test_up_lets_the_annotation_service_fetch_its_dam_s_links_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAAM_DAM__URL", raising=False)
    env = up_environment({"annotation": 50061, "dam": 8123}, {})
    assert json.loads(env["MAAM_MEDIA__TRUSTED_URL_PREFIXES"]) == ["http://127.0.0.1:8123/api/blobs/"]
    monkeypatch.setenv("MAAM_DAM__URL", "http://dam.internal:9000")
    env = up_environment({"dam": 8123}, {})
    assert json.loads(env["MAAM_MEDIA__TRUSTED_URL_PREFIXES"]) == ["http://dam.internal:9000/api/blobs/"]
    mine = '["http://elsewhere/api/blobs/"]'
    assert up_environment({"dam": 8123}, {"MAAM_MEDIA__TRUSTED_URL_PREFIXES": mine})[
        "MAAM_MEDIA__TRUSTED_URL_PREFIXES"] == mine


def test_up_keys_ndd_and_cmrr_when_they_listen_beyond_loopback() -> None:
    """Issue 20: NDD and CMRR had no authentication. `maam up --host 0.0.0.0` gives them (and, through the one
    environment, the DAM that calls them) a fresh key unless one is set; on loopback nothing changes."""
    ports = {"dam": 8123, "ndd": 8124, "cmrr": 8125}
    loopback = up_environment(ports, {})
    assert "MAAM_NDD__API_KEY" not in loopback and "MAAM_CMRR__API_KEY" not in loopback
    exposed = up_environment(ports, {}, "0.0.0.0")
    assert len(exposed["MAAM_NDD__API_KEY"]) >= 32 and len(exposed["MAAM_CMRR__API_KEY"]) >= 32
    assert exposed["MAAM_NDD__API_KEY"] != exposed["MAAM_CMRR__API_KEY"]
    mine = up_environment(ports, {"MAAM_NDD__API_KEY": "mine"}, "0.0.0.0")
    assert mine["MAAM_NDD__API_KEY"] == "mine"


def test_up_wires_the_dam_to_the_ndd_it_starts() -> None:
    """`make up` shows near-duplicates: the DAM is given the NDD started beside it, unless one is configured."""
    assert up_environment({"dam": 8123, "ndd": 8124}, {}, "0.0.0.0")["MAAM_DAM__NDD_URL"] == "http://127.0.0.1:8124"
    assert "MAAM_DAM__NDD_URL" not in up_environment({"dam": 8123}, {})
    mine = up_environment({"dam": 8123, "ndd": 8124}, {"MAAM_DAM__NDD_URL": "http://ndd.internal:8008"})
    assert mine["MAAM_DAM__NDD_URL"] == "http://ndd.internal:8008"


def test_models_list_shows_pullable_models_as_not_installed(tmp_path: Path) -> None:
    result = run("models", "list", "--json", "--repository", str(tmp_path))
    assert result.returncode == 0, result.stderr
    pullable = {row["name"]: row for row in json.loads(result.stdout)["pullable"]}
    assert pullable["clip_vit_b32_image"]["command"] == "maam models pull clip_vit_b32"
    table = run("models", "list", "--repository", str(tmp_path), COLUMNS="200")
    assert "maam models pull vit_gpt2_caption" in table.stdout


def test_health_speaks_http_too() -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/healthz"
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}' if ok else b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run("health", "--target", f"http://127.0.0.1:{server.server_port}")
        assert result.returncode == 0 and "SERVING" in result.stdout, result.stdout + result.stderr
    finally:
        server.shutdown()
    dead = run("health", "--target", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert dead.returncode == 1
