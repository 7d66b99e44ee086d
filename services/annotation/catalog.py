"""What can run now: a model for every installed repository entry that a Format builds
(services/annotation/tasks.py), the pipelines built from several (faces, OCR), the model-free
fallbacks, and from them the units of each row of the task table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from services.annotation.faces import FacePipeline, Gallery
from services.annotation.install_hints import install_hint
from services.annotation.models.captioning import Captioner
from services.annotation.models.embedding import ImageEmbedder
from services.annotation.models.faceres import ExpressionClassifier
from services.annotation.models.formats import BUILTINS, FORMATS, Format, model_format
from services.annotation.models.ocr import OcrPipeline, TextDetector, TextDirection, TextRecognizer
from services.annotation.options import AnnotationOptions
from services.annotation.tasks import TASKS, Media, TaskSpec, Unit
from services.common.inference import InferenceBackend
from services.common.model_repository import ModelRepository

log = logging.getLogger(__name__)

# The command that installs models, named in every "not installed" error.
INSTALL_HINT = "`maam models install-shipped` installs the shipped models, `maam models pull NAME` the others"


class MissingModelError(LookupError):
    """No installed model serves a task, or the named model is not installed."""


class ModelCatalog:
    def __init__(
        self,
        repository: ModelRepository,
        backend: InferenceBackend,
        options: AnnotationOptions | None = None,
        tasks: Sequence[TaskSpec] = TASKS,
        formats: Sequence[Format] = FORMATS,
    ) -> None:
        self.repository = repository
        self.backend = backend
        self.options = options or AnnotationOptions()
        self.tasks, self.formats = tuple(tasks), tuple(formats)
        self.refresh()

    def refresh(self) -> None:
        self.repository.refresh()
        self.adapters: dict[str, Any] = {}  # adapters, face detectors: see FORMATS
        self._task: dict[str, str] = {}
        self._rank: dict[str, tuple[bool, int, str]] = {}
        self._fallback: set[str] = set()  # models of a fallback format (see Format.fallback)
        for spec in self.repository.models():
            found = model_format(spec, self.formats) if spec.installed else None
            model = found.build(spec, self.backend) if found is not None else None
            if found is None or model is None:
                continue
            self.adapters[spec.name] = model
            self._task[spec.name] = spec.task
            self._rank[spec.name] = (not spec.meta.params.get("default", False), self.formats.index(found), spec.name)
            if found.fallback:
                self._fallback.add(spec.name)
        self._link_captioners()
        self.face_pipelines = self._faces()
        self.ocr_pipelines = self._ocr()
        # What a unit runs per repository task, where that is not the task's models themselves.
        self._runners: dict[str, list[Any]] = {task: [make()] for task, make in BUILTINS.items()}
        self._runners |= {"face_detection": list(self.face_pipelines), "ocr_detection": list(self.ocr_pipelines)}
        self._units = {media: self._fanout_units(media) for media in Media}

    # ---- lookup --------------------------------------------------------------------------
    def of_task(self, task: str) -> list[Any]:
        """Installed models of a repository task, the sidecar's `default: true` first."""
        return [self.adapters[n] for n in sorted(self.adapters, key=self._rank.__getitem__) if self._task[n] == task]

    def default(self, task: str) -> Any | None:
        models = self.of_task(task)
        return models[0] if models else None

    def names(self) -> list[str]:
        return sorted(self.adapters)

    # ---- units ---------------------------------------------------------------------------
    def _serving(self, spec: TaskSpec, tasks: tuple[str, ...]) -> list[tuple[str, Any]]:
        return [
            (task, model)
            for task in tasks
            for model in (self._runners[task] if task in self._runners else self.of_task(task))
            if isinstance(model, spec.adapters)
        ]

    def _unit(self, spec: TaskSpec, source: str, model: Any, default: bool) -> Unit:
        helpers = {key: self.default(task) for key, task in spec.helpers.items()}
        return Unit(spec, model, source, helpers, default)

    def _fanout_units(self, media: Media) -> list[Unit]:
        units = []
        for spec in self.tasks:
            if spec.media is not media or not spec.field:
                continue
            found = self._serving(spec, spec.models)
            preferred = [(task, model) for task, model in found if getattr(model, "name", "") not in self._fallback]
            found = preferred or found
            if not found and spec.fallback_in_fanout:
                found = self._serving(spec, spec.fallback)[:1]
            units += [self._unit(spec, task, model, i == 0) for i, (task, model) in enumerate(found)]
        return units

    def units(self, media: Media) -> list[Unit]:
        """The units of a multi-model call on this media type."""
        return self._units[media]

    def unit(self, spec: TaskSpec, name: str = "") -> Unit:
        """The unit of a single-model RPC: the named model, or the row's default."""
        found = self._serving(spec, spec.models) or self._serving(spec, spec.fallback)[:1]
        name = name or (spec.default_model(self) if spec.default_model else "")
        if name:
            every = self._serving(spec, spec.models + spec.fallback)
            found = [(t, m) for t, m in every if name in (m.models if isinstance(m, OcrPipeline) else [m.name])]
            if not found and name in self._task:
                raise MissingModelError(f"model {name!r} serves {self._task[name]}; {spec.rpc} runs a model "
                                        f"of {', '.join(spec.models + spec.fallback)}")
            if not found:
                raise MissingModelError(f"model {name!r} is not installed; {INSTALL_HINT}")
        if not found:
            raise MissingModelError(f"no model for {spec.rpc} is installed (a model of "
                                    f"{', '.join(spec.models + spec.fallback)}); "
                                    f"{install_hint(spec.models + spec.fallback)}")
        return self._unit(spec, *found[0], default=not name)

    # ---- captioning -------------------------------------------------------------------------
    def _link_captioners(self) -> None:
        """Gives each encoder-decoder captioner its decoder's entry. The decoder (task caption_decoder)
        has no adapter of its own, so it is never run, listed or reported as an annotation by itself."""
        for adapter in self.adapters.values():
            if isinstance(adapter, Captioner) and adapter.decoder_name:
                spec = next((s for s in self.repository.models() if s.name == adapter.decoder_name), None)
                adapter.decoder = spec if spec is not None and spec.installed else None
                if adapter.decoder is None:
                    log.warning("captioner %s: its decoder %s is not installed", adapter.name, adapter.decoder_name)

    # ---- pipelines ---------------------------------------------------------------------------
    def _faces(self) -> list[FacePipeline]:
        """One pipeline per face detector (every format), with the face embedder and gallery."""
        embedder = self.default("face_embedding")
        embedder = embedder if isinstance(embedder, ImageEmbedder) else None
        expression = self.default("face_expression")
        gallery_path = self.options.face_gallery
        if gallery_path is None and embedder is not None and embedder.params.get("gallery"):
            gallery_path = embedder.spec.path / str(embedder.params["gallery"])
        gallery = Gallery.load(gallery_path) if gallery_path is not None and gallery_path.is_file() else None
        return [
            FacePipeline(detector, embedder, gallery, self.options.identity_threshold,
                         expression if isinstance(expression, ExpressionClassifier) else None)
            for detector in self.of_task("face_detection")
        ]

    def _ocr(self) -> list[OcrPipeline]:
        pipelines = []
        for det in self.of_task("ocr_detection"):
            rec_name, cls_name = det.params.get("rec_model"), det.params.get("cls_model")
            rec = self.adapters.get(rec_name) if rec_name else self.default("ocr_recognition")
            cls = self.adapters.get(cls_name) if cls_name else self.default("ocr_direction")
            if not isinstance(rec, TextRecognizer) or not isinstance(det, TextDetector):
                log.warning("OCR detector %s has no recognition model installed; skipped", det.name)
                continue
            pipelines.append(OcrPipeline(det, rec, cls if isinstance(cls, TextDirection) else None))
        return pipelines
