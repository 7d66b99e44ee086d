"""CLIP (open_clip) -> two ONNX models sharing one embedding space: the image encoder and the text
encoder (both L2-normalised in the graph), plus the BPE vocabulary the text side tokenizes with."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.common.model_repository import ModelMeta
from services.models.errors import ModelsError, building, require_export_extra
from services.models.export.common import export_and_verify, write_exported

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# open_clip's eval transform: `resize_mode` -> the adapters' params.resize.
RESIZE_MODES = {"shortest": "shorter_side_center_crop", "squash": "stretch", "longest": "letterbox"}
SAMPLE_TEXTS = ("a photo of a cat", "a diagram", "people protesting in a city square at night")


def _encoders(model):
    import torch

    class ImageEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.model.encode_image(images, normalize=True)

    class TextEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.model.encode_text(input_ids, normalize=True)

    return ImageEncoder().eval(), TextEncoder().eval()


def export_clip(
    repository: Path,
    model,
    prefix: str,
    *,
    source: str = "pulled",
    description: str,
    license: str,
) -> dict[str, float]:
    """Exports `<prefix>_image` and `<prefix>_text`; returns each one's ONNX vs torch max abs diff."""
    require_export_extra("exporting CLIP")
    import open_clip
    from open_clip.tokenizer import SimpleTokenizer, default_bpe

    model = model.eval()
    size = model.visual.image_size
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    context_length = int(model.context_length)
    # What open_clip's create_model recorded for the eval transform (defaults: OpenAI's).
    preprocess = dict(getattr(model.visual, "preprocess_cfg", None) or {})
    mean = [float(v) for v in preprocess.get("mean") or getattr(model.visual, "image_mean", None) or OPENAI_MEAN]
    std = [float(v) for v in preprocess.get("std") or getattr(model.visual, "image_std", None) or OPENAI_STD]
    resize = RESIZE_MODES[preprocess.get("resize_mode", "shortest")]
    interpolation = str(preprocess.get("interpolation", "bicubic"))
    image_encoder, text_encoder = _encoders(model)

    rng = np.random.default_rng(0)
    images = ((rng.random((2, 3, height, width), dtype=np.float32) - 0.5) * 4).astype(np.float32)
    image = export_and_verify(f"{prefix}_image", image_encoder, {"images": images}, ["embedding"])

    tokenizer = SimpleTokenizer(context_length=context_length)
    ids = tokenizer(list(SAMPLE_TEXTS)).numpy().astype(np.int64)
    if int(ids.max()) >= int(model.vocab_size):
        ids = np.minimum(ids, int(model.vocab_size) - 1)  # a scaled-down test vocabulary
    text = export_and_verify(f"{prefix}_text", text_encoder, {"input_ids": ids}, ["embedding"])

    dim = int(model.text_projection.shape[1]) if model.text_projection is not None else None
    space = prefix
    bpe = Path(default_bpe())
    common = {"space": space, "dim": dim, "normalized": True}
    write_exported(
        repository, f"{prefix}_image", image.model,
        ModelMeta(
            task="image_embedding",
            source=source,
            description=f"{description}: image encoder",
            license=license,
            params={
                **common,
                "input_size": height,
                "mean": mean,
                "std": std,
                # open_clip's eval transform (for `shortest`: the shorter side resized, centre crop),
                # RGB in [0, 1]; the adapters resize with PIL as torchvision does on PIL images.
                "resize": resize,
                "interpolation": interpolation,
                "quick_gelu": uses_quick_gelu(model),
                "text_model": f"{prefix}_text",
            },
        ),
        output_dims={"embedding": (dim,)} if dim else None,
    )
    write_exported(
        repository, f"{prefix}_text", text.model,
        ModelMeta(
            task="text_embedding",
            source=source,
            description=f"{description}: text encoder",
            license=license,
            params={
                **common,
                "image_model": f"{prefix}_image",
                "tokenizer": {
                    "kind": "clip-bpe",
                    "vocab_file": bpe.name,
                    "context_length": context_length,
                    "sot_token_id": int(tokenizer.sot_token_id),
                    "eot_token_id": int(tokenizer.eot_token_id),
                    "lowercase": True,
                },
            },
        ),
        files={bpe.name: bpe},
        output_dims={"embedding": (dim,)} if dim else None,
    )
    del open_clip
    return {f"{prefix}_image": image.max_abs_diff, f"{prefix}_text": text.max_abs_diff}


def uses_quick_gelu(model) -> bool:
    """Whether every transformer MLP of the model runs QuickGELU (False: none does); a mix is an error."""
    import torch
    from open_clip.transformer import QuickGELU

    kinds = {
        isinstance(m, QuickGELU)
        for m in model.modules()
        if isinstance(m, QuickGELU | torch.nn.GELU)
    }
    if len(kinds) != 1:
        raise ModelsError(f"CLIP model has {'mixed' if kinds else 'no'} GELU / QuickGELU activations")
    return kinds.pop()


def pretrained_config(model_name: str, tag: str) -> dict:
    """Every architecture and preprocessing flag open_clip records for `tag`'s weights: its
    pretrained config (QuickGELU, mean / std, interpolation, resize mode) over the model config
    (image size), with open_clip's defaults where the tag says nothing."""
    import open_clip
    from open_clip.transform import PreprocessCfg

    model_cfg = open_clip.get_model_config(model_name)
    tag_cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not model_cfg or not tag_cfg:
        raise ModelsError(f"open_clip {open_clip.__version__} knows no {model_name} / {tag}")
    defaults = PreprocessCfg()
    return {
        "quick_gelu": bool(tag_cfg.get("quick_gelu", model_cfg.get("quick_gelu", False))),
        "image_size": model_cfg["vision_cfg"]["image_size"],
        "mean": tuple(tag_cfg.get("mean", defaults.mean)),
        "std": tuple(tag_cfg.get("std", defaults.std)),
        "interpolation": tag_cfg.get("interpolation", defaults.interpolation),
        "resize_mode": tag_cfg.get("resize_mode", defaults.resize_mode),
    }


def build_clip(model_name: str, tag: str, checkpoint: Path | None = None):
    """The open_clip model for `tag`'s weights, built with the flags of its pretrained config (not
    the model config's defaults: open_clip 3 builds ViT-B-32 with nn.GELU and only warns for
    `openai`), loaded from `checkpoint` (None: random weights), checked against that config."""
    import open_clip

    cfg = pretrained_config(model_name, tag)
    model = open_clip.create_model(
        model_name,
        pretrained=str(checkpoint) if checkpoint else None,
        force_quick_gelu=cfg["quick_gelu"],
        force_preprocess_cfg={k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode")},
    )
    check_matches(model, cfg, f"open_clip {model_name} / {tag}")
    return model.eval()


def check_matches(model, cfg: dict, what: str) -> None:
    """Raises ModelsError when the built model differs from the pretrained config."""
    got = dict(getattr(model.visual, "preprocess_cfg", None) or {})
    size = model.visual.image_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    want_size = (cfg["image_size"],) * 2 if isinstance(cfg["image_size"], int) else tuple(cfg["image_size"])
    problems = []
    if uses_quick_gelu(model) != cfg["quick_gelu"]:
        problems.append(f"quick_gelu {not cfg['quick_gelu']} (the weights were trained with {cfg['quick_gelu']})")
    if size != want_size:
        problems.append(f"image size {size}, not {want_size}")
    for key in ("mean", "std", "interpolation", "resize_mode"):
        want, have = cfg[key], got.get(key)
        if (tuple(want) if isinstance(want, list | tuple) else want) != (
                tuple(have) if isinstance(have, list | tuple) else have):
            problems.append(f"{key} {have!r}, not {want!r}")
    if problems:
        raise ModelsError(f"{what}: the built model differs from the pretrained config: {'; '.join(problems)}")


def pull_clip(repository: Path, upstream, model_name: str = "ViT-B-32", tag: str = "openai") -> dict[str, float]:
    """Downloads `tag`'s weights from the pull table's pinned Hugging Face repo (the one open_clip
    itself names for the tag) and exports them."""
    require_export_extra("pulling CLIP", ("torch", "open_clip"))
    from services.models.hub import hf_file

    checkpoint = hf_file(upstream, upstream.files[0], f"open_clip {model_name} weights ({tag})")
    with building(f"open_clip {model_name} / {tag}"):
        model = build_clip(model_name, tag, checkpoint)
    prefix = "clip_" + model_name.lower().replace("-", "_").replace("vit_b_32", "vit_b32")
    return export_clip(
        repository, model, prefix,
        description=f"CLIP {model_name} ({tag} weights, via open_clip)",
        license="OpenAI CLIP weights: MIT; open_clip code: MIT",
    )
