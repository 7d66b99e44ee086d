"""Settings shared by every service: environment variables with the MAAM_ prefix, `__` nests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AnnotationServiceSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 50051
    # Requests handled at once; more queue in gRPC instead of exhausting memory.
    max_concurrent_requests: int = 16
    max_message_mb: int = 256
    # Prometheus `/metrics` beside the gRPC port (0 = off).
    metrics_port: int = 9464
    # On SIGTERM: seconds in-flight calls get to finish (under compose's 30 s stop_grace_period).
    shutdown_grace_s: float = 25.0


class MediaSettings(BaseModel):
    # Decoded images larger than this are refused as decompression bombs (100 Mpx).
    max_image_pixels: int = 100_000_000
    max_fetch_mb: int = 512
    fetch_timeout_s: float = 30.0
    max_redirects: int = 3
    # Fetching from loopback, private and link-local addresses is refused unless allowed.
    allow_private_urls: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAAM_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path("var")
    model_repository: Path = Path("triton_models")
    # Packages fetched and models converted by `maam models install-shipped` (outside the checkout, so
    # a fresh clone or `git clean` keeps them): MAAM_CACHE_DIR.
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "maam")
    inference_backend: Literal["onnx", "triton"] = "onnx"
    triton_url: str = "127.0.0.1:8001"
    # Seconds one inference call may take before it fails with a timeout.
    inference_timeout_s: float = 60.0
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
    annotation: AnnotationServiceSettings = Field(default_factory=AnnotationServiceSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)

    @property
    def triton_venv(self) -> Path:
        return self.data_dir / "pytriton-venv"


@lru_cache
def get_settings() -> Settings:
    return Settings()
