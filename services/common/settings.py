"""The one settings root of every MAAM service and the CLI.

Environment variables follow one scheme, `MAAM_<SECTION>__<KEY>` (e.g. `MAAM_INFERENCE__BACKEND`,
`MAAM_MEDIA__MAX_IMAGE_PIXELS`). Three process-wide paths stay top-level because every service and the CLI
share them and no section owns them: `MAAM_DATA_DIR`, `MAAM_MODEL_REPOSITORY` and `MAAM_CACHE_DIR`. A
service extends the root with its own section (`services/dam/core/config.py` adds `dam`,
`services/ndd/core/config.py` `ndd`, ...); this module never imports a service.

Names of the older schemes are refused when settings are built (and by the `maam` CLI before any command),
with a message naming the new variable: `RENAMED` below is the one table of renames.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# ---- the renames ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rename:
    """`old` is a variable name, or a prefix when it ends with `_` (then any name under it that is not
    already in the new scheme). `new` is what to set instead (for a prefix: the prefix that replaces it).
    `only` limits a bare, non-MAAM name to the service that read it (a `MODEL` in the shell is nobody
    else's business)."""

    old: str
    new: str
    only: str | None = None

    @property
    def is_prefix(self) -> bool:
        return self.old.endswith("_")

    def matches(self, name: str) -> bool:
        if not self.is_prefix:
            return name == self.old
        # MAAM_DAM_WORKERS is old, MAAM_DAM__WORKERS is new.
        return name.startswith(self.old) and len(name) > len(self.old) and name[len(self.old)] != "_"

    def replacement(self, name: str) -> str:
        return self.new + name[len(self.old):] if self.is_prefix else self.new


# Exact names first: they win over the prefix rows below them.
RENAMED: tuple[Rename, ...] = (
    Rename("MAAM_TRITON_URL", "MAAM_INFERENCE__TRITON_URL"),
    Rename("MAAM_OPENCV_THREADS", "MAAM_INFERENCE__OPENCV_THREADS"),
    Rename("MAAM_DATABASE_URL", "MAAM_DAM__DATABASE_URL"),
    Rename("MAAM_SEARCH_BACKEND", "MAAM_DAM__SEARCH_BACKEND"),
    Rename("MAAM_ELASTICSEARCH_URL", "MAAM_DAM__ELASTICSEARCH_URL"),
    Rename("MAAM_API_KEY", "MAAM_DAM__API_KEY"),
    Rename("MAAM_MAX_IMAGE_PIXELS", "MAAM_MEDIA__MAX_IMAGE_PIXELS"),
    Rename("MAAM_MAX_FETCH_MB", "MAAM_MEDIA__MAX_FETCH_MB"),
    Rename("MAAM_ANNOTATION_URL", "MAAM_ANNOTATION__HOST and MAAM_ANNOTATION__PORT"),
    # Published ports of docker-compose.yml, once named like the services' own settings.
    Rename("MAAM_ANNOTATION_PORT", "MAAM_PUBLISH_ANNOTATION_PORT (compose) or MAAM_ANNOTATION__PORT (the service)"),
    Rename("MAAM_DAM_PORT", "MAAM_PUBLISH_DAM_PORT (compose) or MAAM_DAM__PORT (the service)"),
    Rename("MAAM_NDD_PORT", "MAAM_PUBLISH_NDD_PORT (compose) or MAAM_NDD__PORT (the service)"),
    Rename("MAAM_CMRR_PORT", "MAAM_PUBLISH_CMRR_PORT (compose) or MAAM_CMRR__PORT (the service)"),
    # The original CMRR's `.env` names.
    Rename("MODEL", "MAAM_CMRR__MODEL", only="cmrr"),
    Rename("PORT", "MAAM_CMRR__PORT (or --port)", only="cmrr"),
    # Whole families: one underscore where the scheme has two.
    Rename("MAAM_INFERENCE_", "MAAM_INFERENCE__"),
    Rename("MAAM_ONNX_", "MAAM_INFERENCE__ONNX_"),
    Rename("MAAM_LOG_", "MAAM_LOG__"),
    Rename("MAAM_MEDIA_", "MAAM_MEDIA__"),
    Rename("MAAM_ANNOTATION_", "MAAM_ANNOTATION__"),
    Rename("MAAM_DAM_", "MAAM_DAM__"),
    Rename("MAAM_NDD_", "MAAM_NDD__"),
    Rename("MAAM_CMRR_", "MAAM_CMRR__"),
)


class RenamedSettingError(ValueError):
    """An environment variable of an older scheme is set; the message names the new one."""


def renamed_in(environ: Mapping[str, str], services: Iterable[str] = ()) -> dict[str, str]:
    """{old name set in `environ`: what to set instead}; bare names count only for `services`."""
    scope = set(services)
    found: dict[str, str] = {}
    for name in sorted(environ):
        for rename in RENAMED:
            if (rename.only is None or rename.only in scope) and rename.matches(name):
                found[name] = rename.replacement(name)
                break
    return found


def check_renamed_env(environ: Mapping[str, str] | None = None, services: Iterable[str] = ()) -> None:
    """Raises RenamedSettingError when a variable of an older scheme is set, so a setting is never
    silently ignored."""
    found = renamed_in(os.environ if environ is None else environ, services)
    if found:
        lines = "; ".join(f"{old} is now {new}" for old, new in found.items())
        raise RenamedSettingError(f"renamed setting(s), not read any more: {lines} (see the README's settings)")


def settings_problems(error: ValidationError) -> str:
    """A settings validation error in the names people set: `MAAM_DAM__WORKERS: ...; ...`."""
    problems = []
    for item in error.errors():
        name = "MAAM_" + "__".join(str(part) for part in item["loc"]).upper() if item["loc"] else ""
        problems.append(f"{name}: {item['msg']}" if name else str(item["msg"]))
    return "; ".join(problems)


# ---- the sections every service shares --------------------------------------------------------------------


class InferenceSettings(BaseModel):
    """MAAM_INFERENCE__*: how models run."""

    backend: Literal["onnx", "triton"] = "onnx"
    triton_url: str = "127.0.0.1:8001"
    # Seconds one inference call may take before it fails with a timeout.
    timeout_s: float = 60.0
    # Threads running ONNX Runtime sessions (each session also uses intra-op threads).
    onnx_workers: int = 4
    onnx_intra_op_threads: int = 0
    # ONNX Runtime's intra-op threads busy-wait for work by default. With many small models sharing
    # a few cores the spinning steals CPU from the models, gRPC and the event loop, so it is off
    # unless turned on (it can lower latency for one large model on a dedicated machine).
    onnx_spin_wait: bool = False
    # OpenCV's own threads per call (resize, Haar, blur). A service's parallelism is its concurrent
    # requests; a per-call thread pool on top only adds hand-offs and wake-ups (it cost the
    # annotation service ~20 % of its CPU per image). 0 = OpenCV's default, one thread per core.
    opencv_threads: int = 1


class AnnotationServiceSettings(BaseModel):
    """MAAM_ANNOTATION__*: where the annotation service listens and what its clients must agree on.
    The service itself adds its tuning to this section (services/annotation/options.py)."""

    host: str = "127.0.0.1"
    port: int = 50051
    # Requests handled at once; more queue in gRPC instead of exhausting memory.
    max_concurrent_requests: int = 16
    max_message_mb: int = 256
    # Prometheus `/metrics` on its own HTTP port: unset = the gRPC port + 1000 (51051 beside 50051), so
    # instances on one machine never collide; 0 = off.
    metrics_port: int | None = Field(None, ge=0, le=65535)
    # On SIGTERM: seconds in-flight calls get to finish (under compose's 30 s stop_grace_period).
    shutdown_grace_s: float = 25.0

    def metrics_port_for(self, grpc_port: int) -> int:
        """The /metrics port of an instance serving gRPC on `grpc_port` (0 = none)."""
        if self.metrics_port is not None:
            return self.metrics_port
        return grpc_port + 1000 if grpc_port + 1000 <= 65535 else grpc_port - 1000


class NddClientSettings(BaseModel):
    """MAAM_NDD__*: what the NDD service and its clients (the DAM) agree on. The service adds its own tuning
    (services/ndd/core/config.py)."""

    # Required on every NDD route when set (services/common/service_auth.py); callers send it.
    api_key: SecretStr | None = None


class CmrrClientSettings(BaseModel):
    """MAAM_CMRR__*: what the CMRR service and its clients agree on (the service's own: services/cmrr/core)."""

    # Required on every CMRR route, the original /mv_retrieval ones included, when set.
    api_key: SecretStr | None = None


class MediaSettings(BaseModel):
    """MAAM_MEDIA__*: decoding and fetching untrusted media, the same in every service."""

    # Decoded images larger than this are refused as decompression bombs (100 Mpx). It is also the
    # limit Pillow itself enforces in the process (services.common.media.apply_media_settings).
    max_image_pixels: int = Field(100_000_000, ge=1)
    max_fetch_mb: int = 512
    fetch_timeout_s: float = 30.0
    max_redirects: int = 3
    # Fetching from loopback, private and link-local addresses is refused unless allowed.
    allow_private_urls: bool = False
    # URL prefixes fetched even from private addresses: the DAM's signed blob links. A prefix without a
    # port matches every port of its host; the path must lie under the prefix's path.
    trusted_url_prefixes: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8000/api/blobs/"])


class LogSettings(BaseModel):
    """MAAM_LOG__*: JSON lines on stderr (`text` for plain lines while developing)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    format: Literal["json", "text"] = "json"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _any_case(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        return value.strip().upper() if info.field_name == "level" else value.strip().lower()


class Settings(BaseSettings):
    # Unknown MAAM_ variables are ignored (another service's sections share the environment), but code
    # passing a field that does not exist (`DamSettings(database_url=...)`) is an error, not a silent default.
    model_config = SettingsConfigDict(env_prefix="MAAM_", env_nested_delimiter="__", extra="forbid")

    # Which bare (non-MAAM) old names this settings class answers for (see Rename.only).
    service: ClassVar[str | None] = None

    data_dir: Path = Path("var")
    model_repository: Path = Path("triton_models")
    # Packages fetched and models converted by `maam models install-shipped` (outside the checkout, so
    # a fresh clone or `git clean` keeps them): MAAM_CACHE_DIR.
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "maam")
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    annotation: AnnotationServiceSettings = Field(default_factory=AnnotationServiceSettings)
    ndd: NddClientSettings = Field(default_factory=NddClientSettings)
    cmrr: CmrrClientSettings = Field(default_factory=CmrrClientSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    def __init__(self, **values: Any) -> None:
        check_renamed_env(services=[self.service] if self.service else [])
        super().__init__(**values)

    @property
    def triton_venv(self) -> Path:
        return self.data_dir / "pytriton-venv"


@lru_cache
def get_settings() -> Settings:
    return Settings()
