"""Builds the zero-shot heads from the installed CLIP: its text encoder (run with ONNX Runtime and
the tokenizer the service uses, so prompt vectors are the service's own) encodes each class's
prompts; the head is written beside CLIP with a stamp of the CLIP weights it was built from, and a
head whose CLIP changed is rebuilt (`maam models pull` of a CLIP does it) or, until then, not served."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from services.common.model_repository import ModelMeta, ModelRepository, ModelSpec
from services.common.text_encoding import encoder_inputs, pool_tokens
from services.common.text_tokenizers import tokenizer_from_params
from services.models.errors import ModelsError
from services.models.export.common import write_exported
from services.models.zeroshot.head import DEFAULT_LOGIT_SCALE, class_vectors, head_graph
from services.models.zeroshot.prompts import HeadDefaults, default_heads

FORMAT = "clip_zeroshot"
REPORTED_AS = "CLIP zero-shot"
PULL_HINT = "`maam models pull clip_zeroshot`"


def clip_stamp(repository: Path, image_model: str, text_model: str) -> str:
    """Which CLIP weights a head was built from: size and modification time of both files (cheap
    enough to check at every catalog refresh; a reinstall changes it)."""
    parts = []
    for name in (image_model, text_model):
        weights = Path(repository) / name / "1" / "model.onnx"
        stat = weights.stat() if weights.is_file() else None
        parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"{name}:missing")
    return "|".join(parts)


def find_clip(repository: ModelRepository, image_model: str | None = None) -> tuple[ModelSpec, ModelSpec]:
    """The CLIP pair to build from: `image_model`, else the installed cross-modal image encoder
    (sidecar default first) whose `params.text_model` is installed too."""
    candidates = [s for s in repository.installed("image_embedding") if s.meta.params.get("text_model")]
    if image_model:
        candidates = [s for s in candidates if s.name == image_model]
    candidates.sort(key=lambda s: (not s.meta.params.get("default", False), s.name))
    for image in candidates:
        text_name = str(image.meta.params["text_model"])
        text = next((s for s in repository.installed("text_embedding") if s.name == text_name), None)
        if text is not None:
            return image, text
    raise ModelsError(
        "the CLIP zero-shot heads are built from an installed CLIP (image and text encoders): "
        "`maam models pull clip_vit_b32` first" + (f" (no CLIP image encoder {image_model!r})" if image_model else "")
    )


class PromptEncoder:
    """The CLIP text encoder on ONNX Runtime, fed and pooled exactly as TextEmbedder does."""

    def __init__(self, text: ModelSpec) -> None:
        if text.weights_path is None:
            raise ModelsError(f"{text.name}: no weights")
        self.tokenizer = tokenizer_from_params(text.path, text.meta.params, text.meta.source)
        self.session = ort.InferenceSession(str(text.weights_path), providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        rows = []
        for start in range(0, len(texts), batch):
            inputs, mask = encoder_inputs(self.tokenizer(list(texts[start : start + batch])), self.input_names)
            rows.append(pool_tokens(self.session.run(None, inputs)[0], mask))
        return np.concatenate(rows).astype(np.float32)


@dataclass(frozen=True)
class HeadConfig:
    """What a head is made of; read back from an installed head's maam.json so edits survive a rebuild."""

    name: str
    task: str
    what: str
    prompts: dict[str, list[str]]
    positive: tuple[str, ...]
    threshold: float
    top_k: int
    logit_scale: float = DEFAULT_LOGIT_SCALE

    @classmethod
    def of(cls, defaults: HeadDefaults, installed: ModelSpec | None = None) -> HeadConfig:
        params = installed.meta.params if installed is not None else {}
        prompts = params.get("prompts") or defaults.prompts
        if not isinstance(prompts, dict) or not prompts or not all(
            isinstance(v, list) and v and all(isinstance(p, str) and p.strip() for p in v) for v in prompts.values()
        ):
            where = installed.path / "maam.json" if installed is not None else defaults.name
            raise ModelsError(f"{where}: params.prompts must map each class to a non-empty list of prompts")
        return cls(
            defaults.name, defaults.task, str(params.get("what", defaults.what)),
            {str(k): [str(p) for p in v] for k, v in prompts.items()},
            tuple(params.get("positive_labels", defaults.positive)),
            float(params.get("threshold", defaults.threshold)),
            int(params.get("top_k", defaults.top_k)),
            float(params.get("logit_scale", DEFAULT_LOGIT_SCALE)),
        )


def build_head(repository: Path, config: HeadConfig, image: ModelSpec, text: ModelSpec,
               encoder: PromptEncoder | None = None) -> Path:
    encoder = encoder or PromptEncoder(text)
    classes = list(config.prompts)
    weights = class_vectors([encoder(config.prompts[c]) for c in classes])
    dim = int(weights.shape[0])
    declared = image.meta.params.get("dim")
    if declared and int(declared) != dim:
        raise ModelsError(f"{text.name} gives {dim}-d vectors, {image.name} {declared}-d: not one CLIP")
    meta = ModelMeta(
        task=config.task, source="pulled", labels=tuple(classes),
        description=f"{REPORTED_AS}: {config.what}, prompt ensembles over {image.name}",
        license="derived from the CLIP weights it was built from (see their licence)",
        params={
            "format": FORMAT, "reported_as": REPORTED_AS, "what": config.what,
            "image_model": image.name, "text_model": text.name,
            "clip_stamp": clip_stamp(image.path.parent, image.name, text.name),
            "prompts": config.prompts, "positive_labels": list(config.positive),
            "threshold": config.threshold, "top_k": config.top_k, "logit_scale": config.logit_scale,
            "activation": "none",  # the graph's second output is already calibrated
            "dim": dim,
        },
    )
    return write_exported(repository, config.name, head_graph(weights, config.logit_scale, config.name), meta,
                          max_batch_size=64, output_dims={"cosine": (len(classes),), "probabilities": (len(classes),)})


def pull_zeroshot(repository: Path, image_model: str | None = None, source: Path | None = None) -> tuple[str, ...]:
    """(Re)builds every default head from the CLIP installed in `source` (default: `repository`) into
    `repository`; prompts edited in an installed head's maam.json are kept."""
    repo = ModelRepository(Path(source or repository))
    image, text = find_clip(repo, image_model)
    encoder = PromptEncoder(text)
    installed = {s.name: s for s in repo.installed()}
    built = []
    for defaults in default_heads():
        build_head(Path(repository), HeadConfig.of(defaults, installed.get(defaults.name)), image, text, encoder)
        built.append(defaults.name)
        print(f"built {defaults.name} ({REPORTED_AS}: {len(defaults.prompts)} classes) from {image.name} + {text.name}")
    return tuple(built)


def stale(spec: ModelSpec) -> str | None:
    """Why an installed head no longer matches its CLIP, or None."""
    params = spec.meta.params
    now = clip_stamp(spec.path.parent, str(params.get("image_model")), str(params.get("text_model")))
    if now == params.get("clip_stamp"):
        return None
    return f"{spec.name} was built from other CLIP weights than those installed now; rebuild it: {PULL_HINT}"


def rebuild_stale(repository: Path) -> tuple[str, ...]:
    """After a CLIP pull: rebuilds the installed heads whose CLIP changed (from their own prompts)."""
    repo = ModelRepository(Path(repository))
    heads = [s for s in repo.installed() if s.meta.params.get("format") == FORMAT and stale(s)]
    if not heads:
        return ()
    try:
        image, text = find_clip(repo)
    except ModelsError:
        return ()
    encoder = PromptEncoder(text)
    defaults = {d.name: d for d in default_heads()}
    for spec in heads:
        base = defaults.get(spec.name) or HeadDefaults(spec.name, spec.task, str(spec.meta.params.get("what", "")), {})
        build_head(Path(repository), HeadConfig.of(base, spec), image, text, encoder)
        print(f"rebuilt {spec.name} from {image.name} + {text.name} (its CLIP changed)")
    return tuple(s.name for s in heads)
