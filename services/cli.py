"""`maam`: run the services, manage models, start a CPU Triton server."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from services.common.logging import configure_logging
from services.common.settings import RenamedSettingError, check_renamed_env, get_settings, settings_problems

app = typer.Typer(help="MAAM: Media Asset Annotation and Management.", no_args_is_help=True)
serve_app = typer.Typer(help="Run one service in the foreground.", no_args_is_help=True)
models_app = typer.Typer(help="The model repository (triton_models/).", no_args_is_help=True)
triton_app = typer.Typer(help="A real Triton server on this CPU machine (PyTriton).", no_args_is_help=True)
app.add_typer(serve_app, name="serve")
app.add_typer(models_app, name="models")
app.add_typer(triton_app, name="triton")

console = Console()

# Each service module exposes `run(host: str, port: int) -> None`; its port without --port is
# MAAM_<NAME>__PORT (the `port` of its settings section), else this default.
SERVICES: dict[str, tuple[str, int]] = {
    "annotation": ("services.annotation.server", 50051),
    "dam": ("services.dam.main", 8000),
    "ndd": ("services.ndd.main", 8008),
    "cmrr": ("services.cmrr.main", 8007),
}
# The settings class of each service (the shared root extended with its section).
SETTINGS: dict[str, str] = {
    "annotation": "services.annotation.options:AnnotationSettings",
    "dam": "services.dam.core.config:DamSettings",
    "ndd": "services.ndd.core.config:NddServiceSettings",
    "cmrr": "services.cmrr.core.config:CmrrServiceSettings",
}

HostOption = Annotated[str, typer.Option(help="Address to bind.")]
PortOption = Annotated[int | None, typer.Option(help="Port to bind (default: the service's own).")]


def available_services() -> list[str]:
    return [name for name, (module, _) in SERVICES.items() if importlib.util.find_spec(module) is not None]


def service_settings(name: str):
    """The settings object of one service, read from the environment now."""
    module, _, cls = SETTINGS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def service_port(name: str) -> int:
    return int(getattr(service_settings(name), name).port)


def _refuse_renamed(services: list[str]) -> None:
    """Stops with the new names when a variable of an older scheme is set (see services/common/settings.py)."""
    try:
        check_renamed_env(services=services)
    except RenamedSettingError as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(2) from exc


@app.callback()
def main() -> None:
    """MAAM: Media Asset Annotation and Management."""
    _refuse_renamed([])


def _run_service(name: str, host: str, port: int | None) -> None:
    module_name, _ = SERVICES[name]
    if importlib.util.find_spec(module_name) is None:
        console.print(f"[red]The {name} service is not part of this build yet.[/red]")
        raise typer.Exit(2)
    _refuse_renamed([name])
    try:
        configure_logging(name)  # JSON lines on stderr (MAAM_LOG__FORMAT=text for plain ones)
        port = port or service_port(name)
    except ValidationError as exc:
        console.print(f"[red]{name}: bad setting: {settings_problems(exc)}[/red]", soft_wrap=True)
        raise typer.Exit(2) from exc
    importlib.import_module(module_name).run(host, port)


def _serve_command(name: str):
    def command(host: HostOption = "127.0.0.1", port: PortOption = None) -> None:
        _run_service(name, host, port)

    command.__doc__ = f"Run the {name} service."
    return command


for _name in SERVICES:
    serve_app.command(_name)(_serve_command(_name))


def _mount(module_name: str, target: typer.Typer, name: str | None = None) -> None:
    """Adds a service's own typer `app`: as a sub-group `name`, or its commands into `target`."""
    if importlib.util.find_spec(module_name) is None:
        return
    sub = importlib.import_module(module_name).app
    if name is None:
        target.registered_commands.extend(sub.registered_commands)
    else:
        target.add_typer(sub, name=name)


_mount("services.models.cli", models_app)
_mount("services.annotation.cli", app)  # maam blur-faces
_mount("services.dam.cli", app, name="dam")  # maam dam reindex / ingest
if importlib.util.find_spec("services.dam.cli") is not None:
    app.command("ingest", help="Bulk upload a directory to the DAM (resumable).")(
        importlib.import_module("services.dam.cli").ingest
    )


# The services that require an API key when theirs is set; `maam up` hands every child the same environment,
# so whatever calls them (the DAM) sends the key they check.
KEYED_SERVICES = {"ndd": "MAAM_NDD__API_KEY", "cmrr": "MAAM_CMRR__API_KEY"}


def up_environment(ports: dict[str, int], environ: Mapping[str, str], host: str = "127.0.0.1") -> dict[str, str]:
    """The environment of the services `maam up` starts: its own, and unless set, the annotation service
    trusting the blob links of the DAM it starts beside it (videos and large images travel that way), the DAM
    using the NDD it starts beside it, and,
    when they listen beyond loopback, a fresh API key for NDD and CMRR (reachable from other machines
    without one, anyone could read and delete their contents)."""
    from services.common.service_auth import is_loopback

    env = dict(environ)
    if "dam" in ports and "MAAM_MEDIA__TRUSTED_URL_PREFIXES" not in env:
        dam = service_settings("dam").dam.model_copy(update={"port": ports["dam"]})
        env["MAAM_MEDIA__TRUSTED_URL_PREFIXES"] = json.dumps([f"{dam.base_url()}/api/blobs/"])
    if "dam" in ports and "ndd" in ports and "MAAM_DAM__NDD_URL" not in env:
        # The DAM registers its assets with the NDD started beside it (near-duplicates in the library);
        # it reaches it on loopback whatever address NDD listens on.
        env["MAAM_DAM__NDD_URL"] = f"http://127.0.0.1:{ports['ndd']}"
    if not is_loopback(host):
        for name, variable in KEYED_SERVICES.items():
            if name in ports and not env.get(variable):
                env[variable] = secrets.token_urlsafe(24)
                console.print(f"{name} listens on {host}: {variable} set to a fresh key for this run: {env[variable]}")
    return env


@app.command()
def up(host: HostOption = "127.0.0.1",
       json_console: Annotated[bool, typer.Option("--json-console", help=(
           "Print the services' JSON logs here instead of writing them to <data dir>/logs/<service>.log."))] = False,
       ) -> None:
    """Run every available service on its port (MAAM_<NAME>__PORT) until interrupted; once they answer, a banner
    says where to open them and which capabilities are on."""
    from services.up_banner import banner, ready

    names = available_services()
    _refuse_renamed(names)
    ports = {name: service_port(name) for name in names}
    env = up_environment(ports, os.environ, host)
    log_dir = None if json_console else get_settings().data_dir / "logs"
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    procs: dict[str, subprocess.Popen] = {}
    for name in names:
        port = ports[name]
        out = open(log_dir / f"{name}.log", "ab") if log_dir is not None else None  # noqa: SIM115 - child's
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", name, "--host", host, "--port", str(port)], env=env,
            stdout=out, stderr=subprocess.STDOUT if out is not None else None,
        )
        if out is not None:
            out.close()  # the child holds its own descriptor
        console.print(f"started {name} on {host}:{port} (pid {procs[name].pid})"
                      + (f", log {log_dir / f'{name}.log'}" if log_dir is not None else ""))
    announced = False
    next_check = 0.0

    stopping = False  # asked to stop: children ending now (even mid-startup) are not failures

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        while procs:
            if not announced and not stopping and time.monotonic() >= next_check:
                next_check = time.monotonic() + 1.0
                if ready(host, ports):
                    announced = True
                    console.print(banner(host, ports, str(log_dir) if log_dir is not None else None),
                                  highlight=False, markup=False)
            for name, proc in list(procs.items()):
                if proc.poll() is not None:
                    if proc.returncode not in (0, -signal.SIGTERM) and not stopping:
                        console.print(f"[red]{name} exited with {proc.returncode}; stopping the others[/red]")
                        if log_dir is not None:
                            tail = (log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-8:]
                            console.print("\n".join(tail), markup=False, highlight=False)
                        code = 1
                        stop()
                    elif proc.returncode not in (0, -signal.SIGTERM):
                        console.print(f"{name} exited with {proc.returncode} while stopping")
                    procs.pop(name)
            time.sleep(0.2)
    finally:
        stop()
    raise typer.Exit(code)


@app.command()
def health(
    target: Annotated[str, typer.Option(help="host:port of a gRPC service, or the http(s):// URL of an HTTP one "
                                               "(DAM, NDD, CMRR: its /healthz is asked).")] = "127.0.0.1:50051",
    service: Annotated[str, typer.Option(help="Service name; empty = the whole server.")] = "",
    timeout: float = 5.0,
) -> None:
    """grpc_health_probe (or GET /healthz of an HTTP service): prints the status, exits 0 only when healthy."""
    if target.startswith(("http://", "https://")):
        _http_health(target, timeout)
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as exc:
            console.print(f"[red]{target}: {exc.code().name}: {exc.details()}[/red]")
            raise typer.Exit(1) from exc
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"status: {status}")
    raise typer.Exit(0 if status == "SERVING" else 1)


def _http_health(url: str, timeout: float) -> None:
    import httpx

    probe = url.rstrip("/") + ("" if url.rstrip("/").endswith("/healthz") else "/healthz")
    try:
        reply = httpx.get(probe, timeout=timeout)
    except httpx.HTTPError as exc:
        console.print(f"[red]{probe}: {type(exc).__name__}: {exc}[/red]")
        raise typer.Exit(1) from exc
    state = "SERVING" if reply.status_code == 200 else "NOT_SERVING"
    print(f"status: {state} (HTTP {reply.status_code}) {reply.text[:200]}")
    raise typer.Exit(0 if reply.status_code == 200 else 1)


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@models_app.command("list")
def models_list(
    repository: Annotated[Path | None, typer.Option(help="Model repository directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every model in the repository: task, installed or not, source, precision, size on disk; then the models
    `maam models pull` can install that are not there yet."""
    from services.common.model_repository import ModelRepository
    from services.models.pull import PULLABLE

    repo = ModelRepository(repository or get_settings().model_repository)
    rows = [
        {
            "name": m.name,
            "task": m.task,
            "installed": m.installed,
            "source": m.meta.source,
            "precision": m.meta.precision,
            "size_bytes": m.size_bytes,
        }
        for m in repo.models()
    ]
    present = {row["name"] for row in rows}
    pullable = [{"name": name, "group": key, "what": item.what, "license": item.license,
                 "command": f"maam models pull {key}"}
                for key, item in PULLABLE.items() for name in item.installs if name not in present]
    if as_json:
        print(json.dumps({"repository": str(repo.root), "models": rows, "pullable": pullable, "errors": repo.errors},
                         indent=2))
        return
    table = Table(title=f"models in {repo.root}")
    for column in ("name", "task", "installed", "source", "precision", "size"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["task"],
            "yes" if row["installed"] else "no",
            row["source"],
            row["precision"],
            _human_size(row["size_bytes"]),
        )
    for row in pullable:
        table.add_row(row["name"], "", "no", row["command"], "", "")
    console.print(table)
    if not rows:
        console.print("no models yet: `maam models install-shipped` installs the ones that ship offline")
    for name, error in repo.errors.items():
        console.print(f"[red]{name}: {error}[/red]")


@triton_app.command("install")
def triton_install() -> None:
    """Create (or update) the PyTriton virtual environment."""
    from services.common.triton_cpu.launcher import ensure_venv

    python = ensure_venv(get_settings().triton_venv)
    print(f"PyTriton environment ready: {python}")


@triton_app.command("serve-cpu")
def triton_serve_cpu(
    repository: Annotated[Path | None, typer.Option(help="Model repository directory.")] = None,
    host: HostOption = "127.0.0.1",
    grpc_port: int = 8001,
    http_port: int = 8010,
    metrics_port: int = 8012,
    threads: Annotated[int, typer.Option(help="ONNX Runtime intra-op threads per model (0 = auto).")] = 0,
) -> None:
    """Serve the repository with a real tritonserver on the CPU (models run on ONNX Runtime)."""
    from services.common.triton_cpu.launcher import ensure_venv, server_command, server_env

    settings = get_settings()
    ensure_venv(settings.triton_venv)
    command = server_command(
        settings.triton_venv,
        repository or settings.model_repository,
        host=host,
        grpc_port=grpc_port,
        http_port=http_port,
        metrics_port=metrics_port,
        threads=threads,
    )
    os.execve(command[0], command, server_env())


if __name__ == "__main__":
    app()
