"""Image and text encoders, grouped by embedding space, found by task in the model repository and run on the
platform's inference backend (ONNX Runtime in-process or Triton).

A cross-modal image encoder is a model with task `image_embedding` whose sidecar names its `space` and its
paired `text_model` (task `text_embedding`). `MAAM_CMRR__MODEL=clip|albef` picks the family: the first installed
one whose name or space contains it. Image encoders without a text model (the offline visual embedding) are spaces of
their own that serve image to image; without a cross-modal pair, a text encoder alone (e.g. MiniLM) serves text
to text. Several spaces serve at once; vectors of two spaces are never compared.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import numpy as np

from services.annotation.models.preprocess import model_input
from services.common.image_resize import ResizeSpec, resize_for_model
from services.common.inference import InferenceBackend
from services.common.media import open_image
from services.common.model_repository import ModelRepository, ModelSpec
from services.common.text_encoding import encoder_inputs, pool_tokens
from services.common.text_tokenizers import Tokenizer, TokenizerError, tokenizer_from_params

log = logging.getLogger(__name__)

MODALITIES = ("text", "image")

# What the operator runs to get a cross-modal encoder (the exporter of the models issue).
INSTALL_HINT = (
    "`maam models pull clip_vit_b32` installs CLIP (image and text encoders); `maam models list` shows what is "
    "installed"
)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"an encoder returned shape {list(vectors.shape)}, expected [batch, dim]")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _pick_output(spec: ModelSpec, outputs: dict[str, np.ndarray]) -> np.ndarray:
    for name in ("embedding", "embeddings", "image_embeds", "text_embeds", "sentence_embedding"):
        if name in outputs:
            return outputs[name]
    first = spec.config.output[0].name if spec.config.output else next(iter(outputs))
    return outputs[first]


class ImageEncoder:
    """RGB image -> resized as the sidecar says (services/common/image_resize.py, the annotation service's
    code too; default: shorter side bicubic + centre crop; ALBEF's `stretch_bicubic` stretches), scale to
    [0, 1], normalise by mean/std, NCHW float32."""

    def __init__(self, spec: ModelSpec, backend: InferenceBackend, max_pixels: int) -> None:
        self.spec = spec
        self.backend = backend
        self.max_pixels = max_pixels
        params = spec.meta.params
        inp = spec.config.input[0]
        self.input_name = inp.name
        self.input_size = int(params.get("input_size") or inp.dims[-1])
        self.mean = np.asarray(params.get("mean", (0.0, 0.0, 0.0)), np.float32).reshape(3, 1, 1)
        self.std = np.asarray(params.get("std", (1.0, 1.0, 1.0)), np.float32).reshape(3, 1, 1)
        # Graphs converted from TensorFlow (the offline visual embedding) take NHWC pixels prepared their own
        # way: the annotation service's preparation, so both services give one image the same vector.
        self.nhwc = params.get("layout") == "NHWC"
        self.resize = None if self.nhwc else ResizeSpec.from_params(
            {"interpolation": "bicubic", **params}, self.input_size, default_mode="shorter_side_center_crop"
        )

    def preprocess(self, data: bytes) -> np.ndarray:
        image = open_image(data, self.max_pixels).convert("RGB")  # MediaError for corrupt images and bombs
        if self.resize is None:
            return model_input(np.asarray(image), self.spec.meta.params)
        pixels, _ = resize_for_model(np.asarray(image), self.resize)
        return (pixels.transpose(2, 0, 1) - self.mean) / self.std

    async def encode(self, data: bytes) -> np.ndarray:
        # Decoding and resizing take milliseconds to seconds for big photos: off the event loop.
        pixels = (await asyncio.to_thread(self.preprocess, data))[None].astype(np.float32)
        outputs = await self.backend.infer(self.spec.name, {self.input_name: pixels})
        return _normalise(_pick_output(self.spec, outputs))[0]


class TextEncoder:
    """UTF-8 text -> token ids (the sidecar's tokenizer) -> embedding; mean-pools token outputs if the model
    returns them (sentence-transformers exports without a pooling head)."""

    def __init__(self, spec: ModelSpec, backend: InferenceBackend) -> None:
        self.spec = spec
        self.backend = backend
        self.tokenizer: Tokenizer = tokenizer_from_params(spec.path, spec.meta.params, spec.meta.source)
        self.input_names = [i.name for i in spec.config.input]

    async def encode(self, text: str) -> np.ndarray:
        ids = self.tokenizer([text])
        inputs, mask = encoder_inputs(ids, self.input_names)
        out = pool_tokens(_pick_output(self.spec, await self.backend.infer(self.spec.name, inputs)), mask)
        return _normalise(out)[0]


@dataclass
class EncoderSet:
    """The encoders of one embedding space; `image`/`text` are None when the space cannot encode that modality."""

    space: str
    image: ImageEncoder | None = None
    text: TextEncoder | None = None

    @property
    def cross_modal(self) -> bool:
        return self.image is not None and self.text is not None

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if self.for_modality(m) is not None)

    def for_modality(self, modality: str) -> ImageEncoder | TextEncoder | None:
        return self.image if modality == "image" else self.text if modality == "text" else None

    def describe(self) -> dict:
        return {"space": self.space, "cross_modal": self.cross_modal, "modalities": list(self.modalities),
                "image_model": self.image.spec.name if self.image else None,
                "text_model": self.text.spec.name if self.text else None}


@dataclass
class Encoders:
    """Every space serving now, the preferred first (the cross-modal pair of the configured family)."""

    family: str
    spaces: list[EncoderSet] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if any(s.for_modality(m) for s in self.spaces))

    def encoding(self, modality: str) -> list[EncoderSet]:
        """The spaces that encode content of this modality (an add is stored in each)."""
        return [s for s in self.spaces if s.for_modality(modality) is not None]

    def for_query(self, modality: str, space: str | None = None) -> EncoderSet | None:
        """The space a query of this modality searches: the named one, else the preferred one encoding it."""
        return next((s for s in self.encoding(modality) if space in (None, s.space)), None)

    def describe(self) -> dict:
        primary = self.spaces[0].describe() if self.spaces else EncoderSet("").describe()
        return {"family": self.family, **primary, "modalities": list(self.modalities), "notes": self.notes,
                "spaces": [s.describe() for s in self.spaces]}


def _matches(spec: ModelSpec, family: str) -> bool:
    space = str(spec.meta.params.get("space", ""))
    return family in spec.name.lower() or family in space.lower()


def _space(spec: ModelSpec) -> str:
    return str(spec.meta.params.get("space", spec.name))


def _cross_modal(repository: ModelRepository, backend: InferenceBackend, family: str, max_pixels: int,
                 image_model: str | None) -> EncoderSet | None:
    images = [m for m in repository.installed("image_embedding") if m.meta.params.get("text_model")]
    for spec in [m for m in images if (m.name == image_model if image_model else _matches(m, family))]:
        try:
            text = TextEncoder(repository.get_installed(str(spec.meta.params["text_model"])), backend)
        except (LookupError, TokenizerError) as exc:
            log.warning("image encoder %s: its text encoder cannot be used: %s", spec.name, exc)
            continue
        return EncoderSet(_space(spec), ImageEncoder(spec, backend, max_pixels), text)
    return None


def _text_only(repository: ModelRepository, backend: InferenceBackend) -> EncoderSet | None:
    paired = {str(m.meta.params.get("text_model")) for m in repository.installed("image_embedding")}
    for spec in repository.installed("text_embedding"):
        if spec.name in paired:
            continue  # a CLIP text tower alone would index text in a space no image ever joins
        try:
            return EncoderSet(_space(spec), text=TextEncoder(spec, backend))
        except TokenizerError as exc:
            log.warning("text encoder %s cannot be used: %s", spec.name, exc)
    return None


def resolve_encoders(
    repository: ModelRepository,
    backend: InferenceBackend,
    family: str,
    *,
    max_pixels: int,
    image_model: str | None = None,
) -> Encoders:
    """The spaces to serve: the family's cross-modal pair, image-only embeddings, and a text-only encoder when
    there is no pair; notes say what is missing and what installs it."""
    family = family.lower()
    repository.refresh()
    found = Encoders(family)
    pair = _cross_modal(repository, backend, family, max_pixels, image_model)
    if pair is not None:
        found.spaces.append(pair)
    image_only = [EncoderSet(_space(m), image=ImageEncoder(m, backend, max_pixels))
                  for m in repository.installed("image_embedding") if not m.meta.params.get("text_model")]
    found.spaces += [s for s in image_only if s.space not in {p.space for p in found.spaces}]
    text = _text_only(repository, backend) if pair is None else None
    if text is not None:
        found.spaces.append(text)
    if pair is None:
        wanted = f"image encoder {image_model!r}" if image_model else f"cross-modal {family.upper()} model"
        serving = [f"image to image with {s.image.spec.name!r}" for s in image_only if s.image]
        serving += [f"text to text only with the text encoder {text.text.spec.name!r}"] if text and text.text else []
        lost = "cross-modal search is" if image_only else "image content and cross-modal search are"
        note = f"no {wanted} is installed, so {lost} unavailable ({INSTALL_HINT})."
        note += f" Serving {' and '.join(serving)}." if serving else " No text encoder is installed either."
        found.notes.append(note)
    return found
