"""The `maam` command line: help, model listing, serve options, `maam up` with health checks."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from services.cli import SERVICES
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
