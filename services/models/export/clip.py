"""CLIP (open_clip) -> two ONNX models sharing one embedding space: the image encoder and the text
encoder (both L2-normalised in the graph), plus the BPE vocabulary the text side tokenizes with."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.common.model_repository import ModelMeta
from services.models.errors import fetching, require_export_extra
from services.models.export.common import export_and_verify, write_exported

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
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
    mean = [float(v) for v in getattr(model.visual, "image_mean", None) or OPENAI_MEAN]
    std = [float(v) for v in getattr(model.visual, "image_std", None) or OPENAI_STD]
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
                # open_clip's eval transform: resize the shorter side (bicubic), centre crop, RGB in [0, 1].
                "resize": "shorter_side_bicubic_center_crop",
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


def pull_clip(repository: Path, model_name: str = "ViT-B-32", pretrained: str = "openai") -> dict[str, float]:
    require_export_extra("pulling CLIP")
    import open_clip

    with fetching(f"open_clip {model_name} weights ({pretrained})"):
        model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
    prefix = "clip_" + model_name.lower().replace("-", "_").replace("vit_b_32", "vit_b32")
    return export_clip(
        repository, model, prefix,
        description=f"CLIP {model_name} ({pretrained} weights, via open_clip)",
        license="OpenAI CLIP weights: MIT; open_clip code: MIT",
    )
