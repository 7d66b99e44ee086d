"""MemeFier (source document 3.1; exported by `maam models train memefier --install NAME`, sidecar
`params.format: memefier`): image + the meme's text → a probability per head. The text is what the
annotation service's OCR reads on the image (PP-OCR models of the same repository, `params.ocr_models`),
cleaned as MemeFier was trained (services.common.text_encoding.clean_meme_text) and tokenized with the
sidecar's CLIP BPE. No demographic tokens are fed: the service has no race/gender/age model, so the
`attributes` input, when the graph has one, says "no person" (models trained with them lose that cue)."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence

import cv2
import numpy as np

from services.annotation.models.classification import ImageClassifier
from services.annotation.models.ocr import OcrPipeline, TextDetector, TextDirection, TextRecognizer
from services.annotation.models.preprocess import to_tensor
from services.common.inference import InferenceBackend
from services.common.model_repository import ModelNotFoundError, ModelRepository, ModelSpec
from services.common.text_encoding import clean_meme_text
from services.common.text_tokenizers import tokenizer_from_params

log = logging.getLogger(__name__)
DEFAULT_OCR = {"det": "ppocr_det", "rec": "ppocr_rec", "cls": "ppocr_cls"}
# The meme and the hateful head score the same image one after the other: its text is read once.
_TEXTS: OrderedDict[tuple[str, bytes], str] = OrderedDict()
_TEXTS_KEPT = 64


def clip_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """open_clip's eval transform: shorter side to `size` (bicubic), centre crop."""
    height, width = rgb.shape[:2]
    scale = size / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_CUBIC)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return np.ascontiguousarray(resized[top:top + size, left:left + size])


class MemeFierClassifier(ImageClassifier):
    def __init__(self, spec: ModelSpec, backend: InferenceBackend) -> None:
        super().__init__(spec, backend)
        self.tokenizer = tokenizer_from_params(spec.path, spec.meta.params, spec.meta.source)
        self._ocr: OcrPipeline | None = None
        self._ocr_checked = False

    def ocr(self) -> OcrPipeline | None:
        """The repository's PP-OCR models through this backend, built once; None when not installed."""
        if not self._ocr_checked:
            self._ocr_checked = True
            names = {**DEFAULT_OCR, **(self.params.get("ocr_models") or {})}
            repository = ModelRepository(self.spec.path.parent)
            try:
                det = TextDetector(repository.get_installed(names["det"]), self.backend)
                rec = TextRecognizer(repository.get_installed(names["rec"]), self.backend)
            except ModelNotFoundError as exc:
                log.warning("%s: no OCR models, memes are scored without their text (%s)", self.name, exc)
                return None
            try:
                cls: TextDirection | None = TextDirection(repository.get_installed(names["cls"]), self.backend)
            except ModelNotFoundError:
                cls = None
            self._ocr = OcrPipeline(det, rec, cls)
        return self._ocr

    async def text(self, rgb: np.ndarray) -> str:
        pipeline = self.ocr()
        if pipeline is None:
            return ""
        key = (str(self.spec.path.parent), hashlib.blake2b(np.ascontiguousarray(rgb).data, digest_size=16,
                                                            person=str(rgb.shape).encode()[:16]).digest())
        if key not in _TEXTS:
            _TEXTS[key] = " ".join(line.text for line in await pipeline.read(rgb))
            while len(_TEXTS) > _TEXTS_KEPT:
                _TEXTS.popitem(last=False)
        _TEXTS.move_to_end(key)
        return _TEXTS[key]

    async def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(len(images), 2): [1 − p, p] of the head the sidecar's `output` names (or its softmax)."""
        size = self.input_size
        mean, std = self.params.get("mean"), self.params.get("std")
        output = str(self.param("output", self.output_names[0]))
        persons = int(self.param("attributes", 0))
        rows = []
        step = self.spec.max_batch_size or 1
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            texts = [clean_meme_text(await self.text(rgb)) for rgb in chunk]
            feeds = {"images": np.stack([to_tensor(clip_crop(rgb, size), mean, std) for rgb in chunk]),
                     "input_ids": self.tokenizer(texts)}
            if persons:
                feeds["attributes"] = np.zeros((len(chunk), persons), np.int64)
            raw = (await self._infer(feeds))[output].astype(np.float32)
            rows.append(np.concatenate([1.0 - raw, raw], axis=1) if raw.shape[1] == 1 else raw)
        return np.concatenate(rows)
