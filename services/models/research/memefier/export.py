"""MemeFier → ONNX in the model repository: `images` [batch, 3, S, S] (CLIP-normalised), `input_ids`
[batch, 77] (CLIP BPE of the cleaned meme text) and, with demographic tokens, `attributes` [batch, 3·P]
→ one probability output per head (sigmoid for one-unit heads, softmax otherwise). The CLIP towers are
inside the graph; the sidecar names the tokenizer, the output its task reads and where the text comes
from (the annotation service's OCR)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from open_clip.tokenizer import SimpleTokenizer, default_bpe
from torch import nn

from services.common.model_repository import ModelMeta
from services.common.text_encoding import clean_meme_text
from services.models.errors import ModelsError
from services.models.export.common import export_and_verify, write_exported
from services.models.research.memefier.model import MemeFier
from services.models.research.memefier.train import OPENAI_MEAN, OPENAI_STD

# The repository task a head serves (the annotation service's meme results read these tasks).
HEAD_TASKS = {"hateful": "hateful_meme_classification", "offensive": "hateful_meme_classification",
              "meme": "meme_classification"}
SAMPLE_TEXTS = ("when you finally understand the assignment", "notext", "look at this dog")


class ServingMemeFier(nn.Module):
    """MemeFier with probabilities out, one tensor per head, in the heads' order."""

    def __init__(self, model: MemeFier) -> None:
        super().__init__()
        self.model = model.eval()
        self.names = list(model.heads)

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor, *attributes: torch.Tensor) -> tuple[
        torch.Tensor, ...
    ]:
        logits = self.model(images, input_ids, attributes[0] if attributes else None)
        return tuple(
            torch.sigmoid(logits[n]) if self.model.head_sizes[n] == 1 else torch.softmax(logits[n], dim=1)
            for n in self.names
        )


def export_memefier(
    repository: Path, model: MemeFier, name: str, *, head: str | None = None, task: str | None = None,
    source: str = "trained", description: str = "", license: str = "as the training data allows",
) -> float:
    """Writes `name`; `head` (default: the first) is the output its task reads."""
    heads = list(model.heads)
    head = head or heads[0]
    if head not in heads:
        raise ModelsError(f"MemeFier has no head {head!r}; it has {', '.join(heads)}")
    task = task or HEAD_TASKS.get(head, f"meme_{head}")
    serving = ServingMemeFier(model)
    size, context = model.features.image_size, model.features.context_length
    tokenizer = SimpleTokenizer(context_length=context)
    rng = np.random.default_rng(0)

    def inputs(batch: int, texts: tuple[str, ...]) -> dict[str, np.ndarray]:
        feeds = {
            "images": rng.standard_normal((batch, 3, size, size)).astype(np.float32),
            "input_ids": tokenizer([clean_meme_text(t) for t in texts[:batch]]).numpy().astype(np.int64),
        }
        if model.arch.external:
            persons = np.zeros((batch, 3 * model.arch.max_persons), np.int64)
            persons[0, :3] = (1, 8, 13)  # one person: White, Male, 20-29
            feeds["attributes"] = persons
        return feeds

    outputs = serving.names
    dynamic = {k: {0: "batch"} for k in [*inputs(1, SAMPLE_TEXTS), *outputs]}
    exported = export_and_verify(name, serving, inputs(2, SAMPLE_TEXTS), outputs, check=inputs(3, SAMPLE_TEXTS),
                                 dynamic_axes=dynamic)
    bpe = Path(default_bpe())
    params = {
        "input_size": size, "mean": list(OPENAI_MEAN), "std": list(OPENAI_STD),
        "resize": "shorter_side_bicubic_center_crop",
        "tokenizer": {"kind": "clip-bpe", "vocab_file": bpe.name, "context_length": context},
        "text_source": "ocr", "text_preprocessing": "memefier",
        "output": head, "heads": {n: model.head_sizes[n] for n in outputs},
        "attributes": 3 * model.arch.max_persons if model.arch.external else 0,
        "activation": "none", "threshold": 0.5, "format": "memefier",
    }
    labels = (f"not_{head}", head) if model.head_sizes[head] == 1 else ()
    write_exported(
        repository, name, exported.model,
        ModelMeta(task=task, source=source, labels=labels, license=license, params=params,
                  description=description or f"MemeFier ({head}): CLIP features, dual-stage fusion"),
        files={bpe.name: bpe},
        output_dims={n: (model.head_sizes[n],) for n in outputs},
    )
    return exported.max_abs_diff
