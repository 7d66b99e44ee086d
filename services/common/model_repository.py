"""The model repository: `triton_models/<name>/config.pbtxt` (Triton's own format, parsed with the
`model_config` protobuf that tritonclient ships) plus a `maam.json` sidecar with what Triton does
not know: the task, labels and pre/post-processing parameters.

Weights live in `<name>/<version>/model.onnx` and are never committed; a model whose weights are
missing is known (listed) but not installed.

A few built-in models do not run on ONNX Runtime (the OpenCV Haar face cascades): their directory has
a `maam.json` with a `runtime` other than `onnxruntime` and a `weights_file`, and no config.pbtxt, so
Triton and the PyTriton server never try to serve them. They are listed here with a synthesized
config (`backend` = the runtime) so `list`, `installed` and `get` treat every model alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from services.common.sidecar_params import unknown_params

CONFIG_FILE = "config.pbtxt"
SIDECAR_FILE = "maam.json"
DEFAULT_WEIGHTS_FILE = "model.onnx"
# The runtime of every model Triton serves; others (e.g. "opencv-haar") run in the service itself.
TRITON_RUNTIME = "onnxruntime"

# How a model got into the repository ("trained": by `maam models train` or `maam models distill`).
SOURCES = ("shipped", "pulled", "imported", "trained", "test")


class ModelRepositoryError(Exception):
    """A model directory that cannot be read (bad config, bad sidecar)."""


class ModelNotFoundError(LookupError):
    """The named model is not in the repository, or its weights are not installed."""

    def __init__(self, name: str, reason: str = "") -> None:
        self.name = name
        hint = reason or (
            f"model {name!r} is not installed; `maam models list` shows what is available and "
            "`maam models install-shipped` or `maam models pull NAME` installs models"
        )
        super().__init__(hint)


@dataclass(frozen=True)
class ModelMeta:
    """The `maam.json` sidecar."""

    task: str
    source: str = "imported"
    labels: tuple[str, ...] = ()
    description: str = ""
    license: str = ""
    precision: str = "fp32"
    # Free-form pre/post-processing parameters read by the task adapter (input size, mean, ...).
    params: dict[str, Any] = field(default_factory=dict)
    # What runs the model: "onnxruntime" (served by Triton / the onnx backend) or a built-in runtime.
    runtime: str = TRITON_RUNTIME
    # For built-in runtimes: the file in `<version>/` whose presence means "installed".
    weights_file: str = ""

    @classmethod
    def load(cls, model_dir: Path) -> ModelMeta:
        path = model_dir / SIDECAR_FILE
        if not path.is_file():
            raise ModelRepositoryError(f"{path}: missing; every model needs a sidecar with its task")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelRepositoryError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("task"), str):
            raise ModelRepositoryError(f"{path}: must be an object with a string 'task'")
        labels: list[str] = list(raw.get("labels") or [])
        labels_file = raw.get("labels_file")
        if labels_file:
            labels_path = model_dir / labels_file
            try:
                labels = [ln.strip() for ln in labels_path.read_text(encoding="utf-8").splitlines()]
            except OSError as exc:
                raise ModelRepositoryError(f"{labels_path}: cannot read labels: {exc}") from exc
            labels = [label for label in labels if label]
        source = raw.get("source", "imported")
        if source not in SOURCES:
            raise ModelRepositoryError(f"{path}: source must be one of {SOURCES}, not {source!r}")
        params = raw.get("params") or {}
        if not isinstance(params, dict):
            raise ModelRepositoryError(f"{path}: params must be an object")
        runtime = raw.get("runtime")
        unknown, schema = unknown_params(raw["task"], params, runtime if runtime != TRITON_RUNTIME else None)
        if unknown:
            raise ModelRepositoryError(
                f"model {model_dir.name!r}: {path}: unknown params key(s) {', '.join(unknown)} for {schema} "
                "(the keys are defined in services/common/sidecar_params.py)"
            )
        return cls(
            task=raw["task"],
            source=source,
            labels=tuple(labels),
            description=str(raw.get("description", "")),
            license=str(raw.get("license", "")),
            precision=str(raw.get("precision", "fp32")),
            params=dict(params),
            runtime=str(raw.get("runtime") or TRITON_RUNTIME),
            weights_file=str(raw.get("weights_file") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task, "source": self.source}
        for key in ("description", "license", "precision"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.labels:
            out["labels"] = list(self.labels)
        if self.params:
            out["params"] = self.params
        if self.runtime != TRITON_RUNTIME:
            out["runtime"] = self.runtime
        if self.weights_file:
            out["weights_file"] = self.weights_file
        return out


@dataclass(frozen=True)
class ModelSpec:
    """One repository entry: its Triton config, sidecar and where its weights are."""

    name: str
    path: Path
    config: model_config_pb2.ModelConfig
    meta: ModelMeta

    @property
    def task(self) -> str:
        return self.meta.task

    @property
    def runtime(self) -> str:
        return self.meta.runtime

    @property
    def triton(self) -> bool:
        """Whether Triton (and the `onnx` backend) serves this model: it has a real config.pbtxt."""
        return self.meta.runtime == TRITON_RUNTIME

    @property
    def version_dir(self) -> Path | None:
        """The newest numeric version directory holding weights (Triton's default policy)."""
        versions = sorted(
            (int(p.name) for p in self.path.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True
        )
        for version in versions:
            if (self.path / str(version) / self.weights_filename).is_file():
                return self.path / str(version)
        return None

    @property
    def weights_filename(self) -> str:
        return self.config.default_model_filename or DEFAULT_WEIGHTS_FILE

    @property
    def weights_path(self) -> Path | None:
        version_dir = self.version_dir
        return version_dir / self.weights_filename if version_dir else None

    @property
    def installed(self) -> bool:
        return self.weights_path is not None

    @property
    def size_bytes(self) -> int:
        """Bytes on disk of everything in the model directory."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    @property
    def max_batch_size(self) -> int:
        return int(self.config.max_batch_size)

    @property
    def dynamic_batching(self) -> bool:
        return self.config.HasField("dynamic_batching")


def parse_config(text: str, origin: str = "<config>") -> model_config_pb2.ModelConfig:
    """Parses a config.pbtxt with Triton's own protobuf, so what loads here loads in Triton."""
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise ModelRepositoryError(f"{origin}: not a valid Triton model config: {exc}") from exc
    return config


def _load_builtin(model_dir: Path) -> ModelSpec:
    """A model without config.pbtxt: only valid when its sidecar names a non-Triton runtime."""
    meta = ModelMeta.load(model_dir)
    if meta.runtime == TRITON_RUNTIME:
        raise ModelRepositoryError(f"{model_dir / CONFIG_FILE}: missing (only built-in runtimes go without one)")
    if not meta.weights_file:
        raise ModelRepositoryError(f"{model_dir / SIDECAR_FILE}: runtime {meta.runtime!r} needs a 'weights_file'")
    config = model_config_pb2.ModelConfig(
        name=model_dir.name, backend=meta.runtime, default_model_filename=meta.weights_file
    )
    return ModelSpec(name=model_dir.name, path=model_dir, config=config, meta=meta)


def load_model(model_dir: Path) -> ModelSpec:
    config_path = model_dir / CONFIG_FILE
    if not config_path.is_file() and (model_dir / SIDECAR_FILE).is_file():
        return _load_builtin(model_dir)
    config = parse_config(config_path.read_text(encoding="utf-8"), str(config_path))
    if config.name and config.name != model_dir.name:
        raise ModelRepositoryError(
            f"{config_path}: name {config.name!r} differs from its directory {model_dir.name!r} "
            "(Triton refuses such a model)"
        )
    return ModelSpec(name=model_dir.name, path=model_dir, config=config, meta=ModelMeta.load(model_dir))


class ModelRepository:
    """Reads a repository directory; re-scans on `refresh()` so newly installed models appear."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._models: dict[str, ModelSpec] = {}
        self._errors: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        models: dict[str, ModelSpec] = {}
        errors: dict[str, str] = {}
        if self.root.is_dir():
            candidates = (
                p for p in self.root.iterdir()
                if not p.name.startswith(".") and ((p / CONFIG_FILE).is_file() or (p / SIDECAR_FILE).is_file())
            )
            for model_dir in sorted(candidates):
                try:
                    models[model_dir.name] = load_model(model_dir)
                except (ModelRepositoryError, OSError) as exc:
                    errors[model_dir.name] = str(exc)
        self._models, self._errors = models, errors

    @property
    def errors(self) -> dict[str, str]:
        """Model directories that could not be read, with the reason."""
        return dict(self._errors)

    def models(self) -> list[ModelSpec]:
        return list(self._models.values())

    def installed(self, task: str | None = None, *, include_builtin: bool = False) -> list[ModelSpec]:
        """Installed models that the inference backends serve; `include_builtin` adds the models that
        run in the service itself (e.g. the OpenCV Haar face detector)."""
        return [
            m for m in self._models.values()
            if m.installed and (task is None or m.task == task) and (include_builtin or m.triton)
        ]

    def triton_models(self) -> list[ModelSpec]:
        """Installed models that Triton serves (built-in runtimes such as OpenCV Haar excluded)."""
        return self.installed()

    def get(self, name: str) -> ModelSpec:
        spec = self._models.get(name)
        if spec is None:
            reason = self._errors.get(name)
            raise ModelNotFoundError(name, f"model {name!r} is broken: {reason}" if reason else "")
        return spec

    def get_installed(self, name: str) -> ModelSpec:
        spec = self.get(name)
        if not spec.installed:
            raise ModelNotFoundError(name)
        return spec
