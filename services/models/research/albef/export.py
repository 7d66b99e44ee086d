"""ALBEF → two ONNX models sharing one 256-d space, as CMRR's `MODEL=albef` finds them: `<prefix>_image`
(task image_embedding; images [B, 3, R, R], CLIP-normalised, resized to R × R as ALBEF's test transform does)
and `<prefix>_text` (task text_embedding; input_ids + attention_mask of BERT's uncased WordPiece), both
L2-normalised inside the graph; BERT's vocab.txt is written beside the text model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.common.model_repository import ModelMeta
from services.common.text_tokenizers import WordPieceTokenizer
from services.models.export.common import export_and_verify, write_exported
from services.models.research.albef.model import AlbefEncoders

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SAMPLE_TEXTS = ("a photo of a cat", "two people walking on a beach at sunset", "a diagram")


def export_albef(
    repository: Path, model: AlbefEncoders, prefix: str, vocab_file: Path, *, source: str = "pulled",
    description: str = "ALBEF", license: str = "BSD-3-Clause (salesforce/ALBEF)",
) -> dict[str, float]:
    model = model.eval()
    arch = model.arch
    size = arch.image_res
    rng = np.random.default_rng(0)
    images = {"images": rng.standard_normal((2, 3, size, size)).astype(np.float32)}
    check = {"images": rng.standard_normal((3, 3, size, size)).astype(np.float32)}
    image = export_and_verify(f"{prefix}_image", model.image, images, ["embedding"], check=check)

    tokenizer = WordPieceTokenizer(Path(vocab_file), arch.context_length, lower_case=True)
    ids = tokenizer(list(SAMPLE_TEXTS))
    feeds = {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}
    text = export_and_verify(f"{prefix}_text", model.text, {k: v[:2] for k, v in feeds.items()}, ["embedding"],
                             check=feeds)
    common = {"space": prefix, "dim": arch.embed_dim, "normalized": True}
    write_exported(
        repository, f"{prefix}_image", image.model,
        ModelMeta(task="image_embedding", source=source, description=f"{description}: image encoder (ViT-B/16)",
                  license=license,
                  params={**common, "input_size": size, "mean": list(CLIP_MEAN), "std": list(CLIP_STD),
                          "resize": "stretch_bicubic", "text_model": f"{prefix}_text"}),
        output_dims={"embedding": (arch.embed_dim,)},
    )
    write_exported(
        repository, f"{prefix}_text", text.model,
        ModelMeta(task="text_embedding", source=source, description=f"{description}: text encoder (BERT, 6 layers)",
                  license=license,
                  params={**common, "image_model": f"{prefix}_image",
                          "tokenizer": {"kind": "wordpiece", "vocab_file": "vocab.txt",
                                        "context_length": arch.context_length, "lowercase": True}}),
        files={"vocab.txt": Path(vocab_file)},
        output_dims={"embedding": (arch.embed_dim,)},
    )
    return {f"{prefix}_image": image.max_abs_diff, f"{prefix}_text": text.max_abs_diff}
