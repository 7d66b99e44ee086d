"""`maam models pull NAME`: pretrained models fetched from the internet, exported to ONNX, verified
(ONNX Runtime vs the framework, max abs diff printed) and installed with generated Triton configs.

The table below is the one place that says where each pull's weights come from (`Upstream`: a Hugging
Face repo id at a pinned commit, or a URL whose file is pinned by a hash or a release tag) and which
models it installs with which task; the pull functions receive their `Upstream` from it. A pull writes
into a hidden staging repository first and moves its models into place together, so a failure or an
interrupt leaves either all of them installed or none (the previous versions stay)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from services.models.errors import ModelsError, require_export_extra


@dataclass(frozen=True)
class Upstream:
    """Where a pull's weights come from. `kind` "hf": `id` is a Hugging Face repo id and `revision`
    the commit (40 hex digits) every download of it is pinned to. `kind` "url": `id` is the URL and
    `revision` what pins its content (a release tag, the hash torchvision checks), or None when the
    publisher offers no pin (said in docs/models.md). `library_id` names the same weights in the
    library that builds the architecture (open_clip tag, timm name, torchvision enum)."""

    kind: str
    id: str
    revision: str | None
    library_id: str = ""
    files: tuple[str, ...] = ()
    # Other pinned inputs of the same pull (a tokenizer's repo), as (id, revision) pairs.
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Pullable:
    # Every model this pull installs and its repository task (tests/models/test_pull_catalog.py
    # checks each task is served by an adapter and each export writes that task).
    models: Mapping[str, str]
    what: str
    license: str
    pull: Callable[[Path, Upstream], object]
    upstream: Upstream
    # The libraries the pull imports; a missing one is a one-line error naming the install command.
    needs: tuple[str, ...] = ("torch",)

    @property
    def installs(self) -> tuple[str, ...]:
        return tuple(self.models)


def _clip(repository: Path, upstream: Upstream) -> object:
    from services.models.export.clip import pull_clip

    return pull_clip(repository, upstream)


def _detector(repository: Path, upstream: Upstream) -> object:
    from services.models.export.detector import pull_ssdlite

    return pull_ssdlite(repository, upstream)


def _captioner(repository: Path, upstream: Upstream) -> object:
    from services.models.export.captioner import pull_captioner

    return pull_captioner(repository, upstream)


def _vit(repository: Path, upstream: Upstream) -> object:
    from services.models.export.vit import pull_vit

    return pull_vit(repository, upstream)


def _albef(repository: Path, upstream: Upstream) -> object:
    from services.models.research.albef.pull import pull_albef

    return pull_albef(repository, upstream)


def _faces(repository: Path, upstream: Upstream) -> object:
    from services.models.export.faces import pull_faces

    return pull_faces(repository, upstream)


PULLABLE: dict[str, Pullable] = {
    "clip_vit_b32": Pullable(
        {"clip_vit_b32_image": "image_embedding", "clip_vit_b32_text": "text_embedding"},
        "CLIP ViT-B/32, OpenAI weights (open_clip): image + text encoders, BPE tokenizer",
        "MIT", _clip,
        Upstream("hf", "timm/vit_base_patch32_clip_224.openai", "a6f597a30f7b82c51704746581f9a4e41421e878",
                 library_id="open_clip ViT-B-32 / openai", files=("open_clip_model.safetensors",)),
        needs=("torch", "open_clip"),
    ),
    "ssdlite320_coco": Pullable(
        {"ssdlite320_coco": "object_detection"},
        "COCO object detector: torchvision SSDlite320 MobileNetV3-Large (80 classes)",
        "BSD-3-Clause", _detector,
        # torchvision checks the file's SHA-256 prefix (a79551df, in its name) after download.
        Upstream("url", "https://download.pytorch.org/models/ssdlite320_mobilenet_v3_large_coco-a79551df.pth",
                 "sha256:a79551df", library_id="torchvision SSDLite320_MobileNet_V3_Large_Weights.COCO_V1"),
        needs=("torch", "torchvision"),
    ),
    "vit_gpt2_caption": Pullable(
        {"vit_gpt2_caption": "image_captioning", "vit_gpt2_caption_decoder": "caption_decoder"},
        "image captioner: ViT-GPT2 (nlpconnect/vit-gpt2-image-captioning), encoder + decoder, GPT-2 tokenizer",
        "Apache-2.0", _captioner,
        Upstream("hf", "nlpconnect/vit-gpt2-image-captioning", "dc68f91c06a1ba6f15268e5b9c13ae7a7c514084",
                 library_id="transformers VisionEncoderDecoderModel"),
        needs=("torch", "transformers"),
    ),
    "vit_b16_in21k": Pullable(
        {"vit_b16_in21k": "region_embedding"},
        "region features: ViT-B/16 pretrained on ImageNet-21k (timm augreg_in21k)",
        "Apache-2.0", _vit,
        # No commit of this repo could be looked up from the build machines (no hub access): the pull
        # takes `main` and prints the commit it resolved, so the user can pin it (docs/models.md).
        Upstream("hf", "timm/vit_base_patch16_224.augreg_in21k", None,
                 library_id="timm vit_base_patch16_224.augreg_in21k", files=("model.safetensors",)),
        needs=("torch", "timm"),
    ),
    "albef_14m": Pullable(
        {"albef_14m_image": "image_embedding", "albef_14m_text": "text_embedding"},
        "ALBEF (14M pre-training checkpoint, source document 4.1.1): ViT-B/16 image + 6-layer BERT text encoders, "
        "256-d space, WordPiece tokenizer (CMRR's MODEL=albef)",
        "BSD-3-Clause", _albef,
        Upstream("url", "https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF.pth", None,
                 library_id="salesforce/ALBEF README (14M)",
                 extra=(("bert-base-uncased", "86b5e0934494bd15c9632b12f734a8a67f723594"),)),
        needs=("torch", "transformers"),
    ),
    "insightface_buffalo_l": Pullable(
        {"scrfd_10g": "face_detection", "arcface_r50": "face_embedding"},
        "face detector SCRFD-10GF + face embedding ArcFace R50 (InsightFace buffalo_l pack, ONNX)",
        "non-commercial research only", _faces,
        Upstream("url", "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip",
                 "release tag v0.7", library_id="insightface model_zoo buffalo_l",
                 files=("det_10g.onnx", "w600k_r50.onnx")),
        needs=("httpx",),
    ),
}
# Each installed model's name also pulls its whole group.
ALIASES = {model: key for key, p in PULLABLE.items() for model in p.installs}

STAGING_PREFIX = ".pull-"


def pull(repository: Path, name: str, table: Mapping[str, Pullable] | None = None) -> tuple[str, ...]:
    """Pulls `name` (a group or one of its models); returns the model names installed."""
    table = PULLABLE if table is None else table
    aliases = {model: key for key, p in table.items() for model in p.installs}
    key = name if name in table else aliases.get(name)
    if key is None:
        raise ModelsError(f"unknown model {name!r}; `maam models pull` knows: {', '.join(table)}")
    item = table[key]
    require_export_extra(f"pulling {key}", item.needs)
    repository = Path(repository)
    repository.mkdir(parents=True, exist_ok=True)
    # The staging repository is a dot-directory, which ModelRepository never lists.
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{key}-", dir=repository))
    try:
        item.pull(staging, item.upstream)
        missing = [m for m in item.installs if not (staging / m).is_dir()]
        if missing:
            raise ModelsError(f"pulling {key}: the export wrote no {', '.join(missing)} (a bug; nothing installed)")
        for model in item.installs:
            record_upstream(staging / model, item.upstream)
        install_together(staging, repository, item.installs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return item.installs


def record_upstream(model_dir: Path, upstream: Upstream) -> None:
    """Writes where the weights came from into the sidecar (`params.upstream`)."""
    from services.common.model_repository import SIDECAR_FILE

    path = model_dir / SIDECAR_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("params", {})["upstream"] = {
        "kind": upstream.kind, "id": upstream.id, "revision": upstream.revision, "library_id": upstream.library_id,
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def install_together(staging: Path, repository: Path, names: tuple[str, ...]) -> None:
    """Moves `staging/<name>` for every name into `repository`: all of them or, on any failure or
    interrupt, none (models they replace are put back)."""
    backups = staging / ".previous"
    backups.mkdir()
    moved: list[str] = []
    try:
        for name in names:
            target = repository / name
            if target.exists():
                target.rename(backups / name)
            (staging / name).rename(target)
            moved.append(name)
    except BaseException:
        for name in reversed(names):
            target = repository / name
            if name in moved:
                shutil.rmtree(target, ignore_errors=True)
            if (backups / name).exists():
                (backups / name).rename(target)
        raise
