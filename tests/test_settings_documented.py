"""Every documented variable works (issue 22): each `MAAM_*` name in the README, docs/*.md, .env.example and
docker-compose.yml is read by something. A service setting, set to a value other than its default, changes the
settings object of every service that has it; a CLI option, compose knob or test knob is read where it says.
And the other way round: every setting of every service is in the README's tables, and the README's table of
renamed names is the one the services enforce."""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import click
import pytest
import typer.main
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from services.annotation.options import AnnotationSettings
from services.cli import app
from services.cmrr.core.config import CmrrServiceSettings
from services.common.settings import RENAMED, Settings, renamed_in
from services.dam.core.config import DamSettings
from services.ndd.core.config import NddServiceSettings
from tests.deploy.compose import COMPOSE_FILE, ENV_EXAMPLE, load_raw, read_env_file, variables

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
SERVICE_SETTINGS: dict[str, type[Settings]] = {
    "shared": Settings, "annotation": AnnotationSettings, "dam": DamSettings, "ndd": NddServiceSettings,
    "cmrr": CmrrServiceSettings,
}
# Containers of docker-compose.yml that run MAAM's code (their environment is MAAM settings only).
MAAM_CONTAINERS = ("annotation", "dam", "ndd", "cmrr", "models")
# A variable name, not a family (`MAAM_DAM__*`), a placeholder (`MAAM_<NAME>__PORT`) or a prefix.
NAME = re.compile(r"\bMAAM_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_<*…])")
RENAMED_SECTION = re.compile(r"^### Renamed settings\n(?P<body>.*?)(?=^#{1,3} |\Z)", re.M | re.S)


def _readme_without_renames() -> str:
    text = README.read_text(encoding="utf-8")
    return RENAMED_SECTION.sub("", text)


def _documents() -> dict[str, str]:
    texts = {"README.md": _readme_without_renames()}
    for path in sorted((REPO_ROOT / "docs").glob("*.md")):
        texts[f"docs/{path.name}"] = path.read_text(encoding="utf-8")
    texts[".env.example"] = ENV_EXAMPLE.read_text(encoding="utf-8")
    texts["docker-compose.yml"] = COMPOSE_FILE.read_text(encoding="utf-8")
    return texts


def documented() -> dict[str, list[str]]:
    """{variable: [documents naming it]}."""
    found: dict[str, list[str]] = {}
    for where, text in _documents().items():
        for name in NAME.findall(text):
            found.setdefault(name, [])
            if where not in found[name]:
                found[name].append(where)
    return found


# ---- where a name lands in the settings --------------------------------------------------------------------


def _field(model: type[BaseModel], path: list[str]) -> FieldInfo | None:
    field = None
    for index, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return None
        if index < len(path) - 1:
            inner = field.annotation
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                return None
            model = inner
    return field


def _path(name: str) -> list[str]:
    return [part.lower() for part in name.removeprefix("MAAM_").split("__")]


def settings_homes(name: str) -> dict[str, FieldInfo]:
    """{service: the field the variable sets} for every service settings class that has it."""
    path = _path(name)
    homes = {}
    for service, cls in SERVICE_SETTINGS.items():
        field = _field(cls, path)
        if field is not None and not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            homes[service] = field
    return homes


def _cli_envvars() -> set[str]:
    names: set[str] = set()

    def walk(command: click.Command) -> None:
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            names.update([envvar] if isinstance(envvar, str) else list(envvar or []))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    return names


def _compose_knobs() -> set[str]:
    """Variables docker compose itself interpolates (and the Dockerfile's build arguments)."""
    knobs = {name for name, _ in variables(COMPOSE_FILE.read_text(encoding="utf-8"))}
    knobs |= set(re.findall(r"^ARG (\w+)", (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M))
    return knobs


def _test_sources() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in (REPO_ROOT / "tests").rglob("*.py"))


# ---- values that differ from the default ------------------------------------------------------------------


def _candidates(field: FieldInfo) -> list[str]:
    default = field.get_default(call_default_factory=True)
    annotation = field.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1
    base = args[0] if optional else annotation
    if base is bool:
        return ["false" if default else "true"]
    if typing.get_origin(base) is typing.Literal:
        return [str(choice) for choice in typing.get_args(base) if choice != default]
    if base is int:
        number = int(default or 0)
        return [str(number + 1), str(number - 1), "4321"]
    if base is float:
        number = float(default or 0)
        return [str(number + 0.25), str(number / 2), "0.5"]
    if base is Path:
        return ["/tmp/maam-documented"]
    if typing.get_origin(base) is list:
        return [json.dumps(["http://maam-documented/"])]
    return ["maam-documented"]


def _parsed(field: FieldInfo, raw: str) -> Any:
    adapter: TypeAdapter[Any] = TypeAdapter(field.annotation)
    return adapter.validate_json(raw) if raw.startswith("[") else adapter.validate_strings(raw)


def _value(settings: BaseModel, path: list[str]) -> Any:
    value: Any = settings
    for part in path:
        value = getattr(value, part)
    return value


# ---- the tests ----------------------------------------------------------------------------------------------

DOCUMENTED = documented()
SETTINGS_NAMES = sorted(name for name in DOCUMENTED if settings_homes(name))


def test_the_documents_name_variables() -> None:
    assert len(DOCUMENTED) > 80 and "MAAM_MEDIA__MAX_IMAGE_PIXELS" in DOCUMENTED


def test_no_document_names_an_old_variable() -> None:
    old = {name: (renamed_in({name: ""}, ["cmrr"])[name], where) for name, where in DOCUMENTED.items()
           if renamed_in({name: ""}, ["cmrr"])}
    assert not old, f"documented under an old name (old: new, where): {old}"


def test_every_documented_variable_is_read_by_something() -> None:
    knobs, envvars, tests = _compose_knobs(), _cli_envvars(), _test_sources()
    unread = {}
    for name, where in DOCUMENTED.items():
        if settings_homes(name) or name in envvars:
            continue
        if name.startswith(("MAAM_TEST_", "MAAM_GPU_SUITE_")) and f'"{name}"' in tests:
            continue
        if name in knobs or f"$${{{name}}}" in COMPOSE_FILE.read_text(encoding="utf-8"):
            continue  # compose interpolates it, or a container's own shell command reads it
        unread[name] = where
    assert not unread, f"documented, but no service, CLI option, compose file or test reads them: {unread}"


@pytest.mark.parametrize("name", SETTINGS_NAMES)
def test_each_setting_takes_effect_in_every_service_that_has_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _path(name)
    for service, field in settings_homes(name).items():
        cls = SERVICE_SETTINGS[service]
        default = _value(cls(), path)
        for raw in _candidates(field):
            monkeypatch.setenv(name, raw)
            try:
                settings = cls()
            except ValidationError:
                continue  # e.g. an upload cap above the fetch cap: the next candidate
            finally:
                monkeypatch.delenv(name)
            assert _value(settings, path) == _parsed(field, raw) != default, f"{name} in {service}"
            break
        else:
            pytest.fail(f"{name}: no value other than the default is accepted by the {service} settings")


def test_every_setting_of_every_service_is_in_the_readme_tables() -> None:
    readme = _readme_without_renames()
    missing = []

    def leaves(model: type[BaseModel], prefix: str) -> None:
        for key, field in model.model_fields.items():
            inner = field.annotation
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                leaves(inner, f"{prefix}{key.upper()}__")
            elif f"`{prefix}{key.upper()}`" not in readme:
                missing.append(f"{prefix}{key.upper()}")

    for cls in SERVICE_SETTINGS.values():
        leaves(cls, "MAAM_")
    assert not sorted(set(missing)), f"settings missing from the README's tables: {sorted(set(missing))}"


def test_the_cli_options_read_the_documented_names() -> None:
    assert "MAAM_DAM__API_KEY" in _cli_envvars()
    assert "MAAM_DAM__API_KEY" in DOCUMENTED


def test_env_example_settings_reach_the_containers() -> None:
    """A service setting in .env only works if compose passes it into the containers under its name."""
    environments = {name: load_raw()["services"][name].get("environment") or {} for name in MAAM_CONTAINERS}
    forwarded = {key: value for env in environments.values() for key, value in env.items()}
    for name in read_env_file():
        if settings_homes(name):
            assert str(forwarded.get(name, "")).startswith(f"${{{name}"), f".env's {name} is not passed to the services"


def test_compose_passes_the_services_settings_only() -> None:
    raw = load_raw()
    for container in (*MAAM_CONTAINERS, "x-maam-env"):
        environment = raw[container] if container.startswith("x-") else raw["services"][container].get("environment")
        names = [key for key in environment or {} if key.startswith("MAAM_")]
        # A variable the container's own shell command reads ($${NAME}) is that command's business.
        own = json.dumps([raw["services"].get(container, {}).get(k) for k in ("command", "entrypoint")])
        stray = [name for name in names if not settings_homes(name) and f"$${{{name}}}" not in own]
        assert not stray, f"{container}: compose sets variables no MAAM service reads: {stray}"


def test_the_readme_rename_table_is_the_enforced_one() -> None:
    body = RENAMED_SECTION.search(README.read_text(encoding="utf-8"))
    assert body is not None
    rows = re.findall(r"^\| `([A-Z_]+)(\*?)` \| (.+?) \|$", body["body"], re.M)
    table = {old: new for old, _, new in rows}
    for rename in RENAMED:
        assert rename.old in table, f"{rename.old} missing from the README's rename table"
        assert rename.new.split()[0] in table[rename.old], f"{rename.old}: the README says {table[rename.old]}"
    assert len(rows) == len(RENAMED)


def test_every_service_reads_the_shared_sections() -> None:
    """The DAM once lacked `media`, so MAAM_MEDIA__MAX_IMAGE_PIXELS did nothing there: each service's settings
    extend the one root and so carry every shared section."""
    for service, cls in SERVICE_SETTINGS.items():
        assert issubclass(cls, Settings), service
        for section in ("inference", "annotation", "media", "log"):
            assert section in cls.model_fields, f"{service} lacks {section}"


def _fields(section: type[BaseModel]) -> list[str]:
    return [key.upper() for key in section.model_fields]


def test_every_old_name_of_the_previous_schemes_points_at_a_setting_that_exists() -> None:
    """The names the services read before (one underscore, flat NDD/CMRR prefixes, CMRR's bare MODEL/PORT,
    the ingest CLI's), each refused with a new name that a service or the CLI really reads."""
    from services.annotation.options import AnnotationOptions
    from services.cmrr.core.config import CmrrSettings
    from services.common.settings import InferenceSettings
    from services.ndd.core.config import NddSettings

    old = {"MAAM_INFERENCE_BACKEND", "MAAM_TRITON_URL", "MAAM_INFERENCE_TIMEOUT_S", "MAAM_OPENCV_THREADS",
           "MAAM_LOG_LEVEL", "MAAM_LOG_FORMAT", "MAAM_DATABASE_URL", "MAAM_DAM_URL", "MAAM_API_KEY", "MODEL", "PORT",
           "MAAM_MAX_IMAGE_PIXELS", "MAAM_MAX_FETCH_MB", "MAAM_SEARCH_BACKEND", "MAAM_ELASTICSEARCH_URL"}
    old |= {f"MAAM_{key}" for key in _fields(InferenceSettings) if key.startswith("ONNX_")}
    old |= {f"MAAM_ANNOTATION_{key}" for key in _fields(AnnotationOptions)}
    old |= {f"MAAM_NDD_{key}" for key in _fields(NddSettings)}
    old |= {f"MAAM_CMRR_{key}" for key in _fields(CmrrSettings)}
    renamed = renamed_in(dict.fromkeys(old, "x"), ["cmrr"])
    assert set(renamed) == old
    envvars, knobs = _cli_envvars(), _compose_knobs()
    for name, new in renamed.items():
        targets = re.findall(r"MAAM_\w+", new)
        assert targets and all(settings_homes(t) or t in envvars or t in knobs for t in targets), f"{name} -> {new}"
