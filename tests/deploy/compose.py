"""Reading docker-compose.yml as docker compose does: YAML (with merge keys), `.env` values and
`${VAR}` interpolation, for the validation tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

# $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME.
_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    pass


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=VALUE: {line!r}")
        values[key.strip()] = value.strip()
    return values


def variables(text: str) -> list[tuple[str, str | None]]:
    """(name, operator) of every interpolated variable; operator None when it has no default."""
    found = []
    for match in _VAR.finditer(text):
        if match["escaped"]:
            continue
        found.append((match["braced"] or match["bare"], match["op"]))
    return found


def interpolate(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        if op in (":-", "-"):
            return value if value is not None and (op == "-" or value != "") else arg
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise InterpolationError(f"{name}: {arg}")
            return value
        if op in (":+", "+"):
            return arg if value is not None and (op == "+" or value != "") else ""
        return value or ""

    return _VAR.sub(replace, text)


def _interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def load_raw(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load(env: dict[str, str] | None = None, path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose model after interpolation (values, not text: as compose interpolates)."""
    return _interpolate_tree(load_raw(path), read_env_file() if env is None else env)


def service_profiles(service: dict[str, Any]) -> list[str]:
    return list(service.get("profiles") or [])


def is_job(service: dict[str, Any]) -> bool:
    """One-shot services (setup, config generation, tools): they exit when done."""
    labels = service.get("labels") or {}
    if isinstance(labels, list):
        labels = dict(item.split("=", 1) for item in labels)
    return str(labels.get("org.maam.job", "")).lower() == "true"
