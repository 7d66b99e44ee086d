"""What can run now: an adapter for every installed repository model whose task has one, plus the
pipelines built from several models (faces, OCR) and the model-free fallbacks (Haar, saliency)."""

from __future__ import annotations

import logging
from typing import TypeVar

from services.annotation.face_detection.base import FaceDetector
from services.annotation.faces import FacePipeline, Gallery, default_haar_detector
from services.annotation.models import HAAR_RUNTIME, TaskModel, create_adapter
from services.annotation.models.captioning import Captioner
from services.annotation.models.detection import DnnFaceDetector, FaceDetectorView, NsfwDetector
from services.annotation.models.embedding import ImageEmbedder
from services.annotation.models.faceres import ExpressionClassifier
from services.annotation.models.nsfw import NsfwClassifier
from services.annotation.models.ocr import OcrPipeline, TextDetector, TextDirection, TextRecognizer
from services.annotation.options import AnnotationOptions
from services.common.inference import InferenceBackend
from services.common.model_repository import ModelRepository

log = logging.getLogger(__name__)

T = TypeVar("T", bound=TaskModel)

# The command that installs models, named in every "not installed" error.
INSTALL_HINT = "`maam models install-shipped` installs the shipped models, `maam models pull NAME` the others"

# Tasks of models that are parts of another model (run by that model's adapter), never annotations of their own.
PART_TASKS = frozenset({"caption_decoder"})


class MissingModelError(LookupError):
    """No installed model serves a task, or the named model is not installed."""


class ModelCatalog:
    def __init__(
        self,
        repository: ModelRepository,
        backend: InferenceBackend,
        options: AnnotationOptions | None = None,
        haar: FaceDetector | None = None,
    ) -> None:
        self.repository = repository
        self.backend = backend
        self.options = options or AnnotationOptions()
        self._haar = haar
        self.refresh()

    def refresh(self) -> None:
        self.repository.refresh()
        adapters: dict[str, TaskModel] = {}
        haar_names: list[str] = []
        for spec in self.repository.models():
            if spec.task == "face_detection" and HAAR_RUNTIME in (spec.meta.runtime, spec.meta.params.get("runtime")):
                if spec.installed:
                    haar_names.append(spec.name)
                continue
            if not spec.installed or spec.task in PART_TASKS:
                continue
            adapter = create_adapter(spec, self.backend)
            if adapter is not None:
                adapters[spec.name] = adapter
        self.adapters = adapters
        self._link_captioners()
        self._link_nsfw()
        self._build_faces(haar_names)
        self._build_ocr()

    # ---- lookup --------------------------------------------------------------------------
    def of_task(self, task: str) -> list[TaskModel]:
        """Installed models of a task, the sidecar's `default: true` first, then by name."""
        found = [a for a in self.adapters.values() if a.task == task]
        return sorted(found, key=lambda a: (not a.params.get("default", False), a.name))

    def default(self, task: str) -> TaskModel | None:
        models = self.of_task(task)
        return models[0] if models else None

    def pick(self, task: str, name: str, kind: type[T]) -> T:
        """The named model of a task, or the task's default when name is empty."""
        if name:
            adapter = self.adapters.get(name)
            if adapter is None:
                raise MissingModelError(f"model {name!r} is not installed; {INSTALL_HINT}")
            if adapter.task != task:
                raise MissingModelError(f"model {name!r} serves {adapter.task}, not {task}")
            return adapter  # type: ignore[return-value]
        adapter = self.default(task)
        if adapter is None:
            raise MissingModelError(f"no {task} model is installed; {INSTALL_HINT}")
        return adapter  # type: ignore[return-value]

    def names(self) -> list[str]:
        return sorted(self.adapters)

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

    # ---- NSFW ---------------------------------------------------------------------------------
    def _link_nsfw(self) -> None:
        """An NSFW classifier decides; the default body-part detector's regions are its evidence."""
        detector = self.default("nsfw_detection")
        for adapter in self.of_task("nsfw_classification"):
            if isinstance(adapter, NsfwClassifier):
                adapter.evidence = detector if isinstance(detector, NsfwDetector) else None

    # ---- faces ---------------------------------------------------------------------------
    def _build_faces(self, haar_names: list[str]) -> None:
        embedder = self.default("face_embedding")
        gallery_path = self.options.face_gallery
        if gallery_path is None and embedder is not None and embedder.params.get("gallery"):
            gallery_path = embedder.spec.path / str(embedder.params["gallery"])
        gallery = None
        if gallery_path is not None and gallery_path.is_file():
            gallery = Gallery.load(gallery_path)
        detectors: list[FaceDetector] = [
            FaceDetectorView(a) for a in self.of_task("face_detection") if isinstance(a, DnnFaceDetector)
        ]
        for spec in sorted(self.repository.installed("face_detection"), key=lambda s: s.name):
            if spec.meta.runtime != HAAR_RUNTIME and spec.name not in self.adapters:
                from services.annotation.face_detection.factory import face_detector_for

                detectors.append(face_detector_for(spec, self.backend))
        # OpenCV's Haar cascades run in process; `maam models install-shipped` adds their entry.
        haar = (self._haar or default_haar_detector()) if haar_names else None
        if haar is not None:
            self._haar = haar
            haar.name = haar_names[0]  # reported under its repository entry's name
            detectors.append(haar)
        face_embedder = embedder if isinstance(embedder, ImageEmbedder) else None
        expression = self.default("face_expression")
        self.face_pipelines = [
            FacePipeline(d, face_embedder, gallery, self.options.identity_threshold,
                         expression if isinstance(expression, ExpressionClassifier) else None)
            for d in detectors
        ]

    def face_pipeline(self, name: str = "") -> FacePipeline:
        for pipeline in self.face_pipelines:
            if not name or pipeline.name == name:
                return pipeline
        if name:
            raise MissingModelError(f"face detector {name!r} is not installed; {INSTALL_HINT}")
        raise MissingModelError(f"no face detector is available; {INSTALL_HINT}")

    @property
    def face_detector(self) -> FaceDetector | None:
        return self.face_pipelines[0].detector if self.face_pipelines else None

    # ---- OCR -----------------------------------------------------------------------------
    def _build_ocr(self) -> None:
        pipelines = []
        for det in self.of_task("ocr_detection"):
            rec_name, cls_name = det.params.get("rec_model"), det.params.get("cls_model")
            rec = self.adapters.get(rec_name) if rec_name else self.default("ocr_recognition")
            cls = self.adapters.get(cls_name) if cls_name else self.default("ocr_direction")
            if not isinstance(rec, TextRecognizer) or not isinstance(det, TextDetector):
                log.warning("OCR detector %s has no recognition model installed; skipped", det.name)
                continue
            pipelines.append(OcrPipeline(det, rec, cls if isinstance(cls, TextDirection) else None))
        self.ocr_pipelines = pipelines

    def ocr_pipeline(self, name: str = "") -> OcrPipeline:
        for pipeline in self.ocr_pipelines:
            if not name or name in pipeline.models:
                return pipeline
        what = f"OCR model {name!r} is" if name else "no OCR models (ocr_detection + ocr_recognition) are"
        raise MissingModelError(f"{what} not installed; {INSTALL_HINT}")
