"""`maam models pull NAME`: pretrained models fetched from the internet, exported to ONNX, verified
(ONNX Runtime vs the framework, max abs diff printed) and installed with generated Triton configs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.models.errors import ModelsError, require_export_extra


@dataclass(frozen=True)
class Pullable:
    installs: tuple[str, ...]
    what: str
    license: str
    pull: Callable[[Path], object]
    needs_torch: bool = True


def _clip(repository: Path) -> object:
    from services.models.export.clip import pull_clip

    return pull_clip(repository)


def _detector(repository: Path) -> object:
    from services.models.export.detector import pull_ssdlite

    return pull_ssdlite(repository)


def _captioner(repository: Path) -> object:
    from services.models.export.captioner import pull_captioner

    return pull_captioner(repository)


def _vit(repository: Path) -> object:
    from services.models.export.vit import pull_vit

    return pull_vit(repository)


def _albef(repository: Path) -> object:
    from services.models.research.albef.pull import pull_albef

    return pull_albef(repository)


def _faces(repository: Path) -> object:
    from services.models.export.faces import pull_faces

    return pull_faces(repository)


def _kinetics(repository: Path) -> object:
    from services.models.export.kinetics import pull_kinetics

    return pull_kinetics(repository)


def _zeroshot(repository: Path) -> object:
    from services.models.zeroshot.build import pull_zeroshot

    return pull_zeroshot(repository)


PULLABLE: dict[str, Pullable] = {
    "clip_vit_b32": Pullable(
        ("clip_vit_b32_image", "clip_vit_b32_text"),
        "CLIP ViT-B/32, OpenAI weights (open_clip): image + text encoders, BPE tokenizer",
        "MIT", _clip,
    ),
    "ssdlite320_coco": Pullable(
        ("ssdlite320_coco",), "COCO object detector: torchvision SSDlite320 MobileNetV3-Large (80 classes)",
        "BSD-3-Clause", _detector,
    ),
    "vit_gpt2_caption": Pullable(
        ("vit_gpt2_caption", "vit_gpt2_caption_decoder"),
        "image captioner: ViT-GPT2 (nlpconnect/vit-gpt2-image-captioning), encoder + decoder, GPT-2 tokenizer",
        "Apache-2.0", _captioner,
    ),
    "vit_b16_in21k": Pullable(
        ("vit_b16_in21k",), "region features: ViT-B/16 pretrained on ImageNet-21k (timm augreg_in21k)",
        "Apache-2.0", _vit,
    ),
    "albef_14m": Pullable(
        ("albef_14m_image", "albef_14m_text"),
        "ALBEF (14M pre-training checkpoint, source document 4.1.1): ViT-B/16 image + 6-layer BERT text encoders, "
        "256-d space, WordPiece tokenizer (CMRR's MODEL=albef)",
        "BSD-3-Clause", _albef,
    ),
    "insightface_buffalo_l": Pullable(
        ("scrfd_10g", "arcface_r50"),
        "face detector SCRFD-10GF + face embedding ArcFace R50 (InsightFace buffalo_l pack, ONNX)",
        "non-commercial research only", _faces, needs_torch=False,
    ),
    "kinetics_r2plus1d_18": Pullable(
        ("kinetics_r2plus1d_18",),
        "action recognition: torchvision R(2+1)D-18, Kinetics-400 (400 actions), clips of 16 frames at 112x112; "
        "serves VideoActionRecognition and ImageActionRecognition (an image as a still clip)",
        "BSD-3-Clause", _kinetics,
    ),
    "clip_zeroshot": Pullable(
        ("clip_zeroshot_disturbing", "clip_zeroshot_meme", "clip_zeroshot_tags"),
        "CLIP zero-shot heads built from the installed CLIP's text encoder (no download; under a minute on a CPU): "
        "disturbing content, memes, scene/object tags; prompts and thresholds in each head's maam.json",
        "as the CLIP weights", _zeroshot, needs_torch=False,
    ),
}
# Each installed model's name also pulls its whole group.
ALIASES = {model: key for key, p in PULLABLE.items() for model in p.installs}


def pull(repository: Path, name: str) -> tuple[str, ...]:
    """Pulls `name` (a group or one of its models); returns the model names installed."""
    key = name if name in PULLABLE else ALIASES.get(name)
    if key is None:
        raise ModelsError(f"unknown model {name!r}; `maam models pull` knows: {', '.join(PULLABLE)}")
    item = PULLABLE[key]
    if item.needs_torch:
        require_export_extra(f"pulling {key}")
    item.pull(Path(repository))
    if key != "clip_zeroshot":
        from services.models.zeroshot.build import rebuild_stale

        rebuild_stale(Path(repository))  # a new CLIP: its zero-shot heads follow it
    return item.installs
