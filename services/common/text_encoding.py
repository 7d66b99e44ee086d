"""What a text encoder is fed and how its output becomes one vector per text, shared by the
annotation service (TextCrossModalEmbedding) and CMRR so both give the same vector for a text."""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

_PUNCTUATION = str.maketrans("", "", string.punctuation)


def encoder_inputs(ids: np.ndarray, input_names: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Feeds for a text encoder's inputs (ids, attention_mask, token_type_ids) and the mask used."""
    mask = (ids != 0).astype(np.int64)
    mask[:, 0] = 1  # the first token (start / CLS) counts even when its id is 0
    inputs: dict[str, np.ndarray] = {}
    for name in input_names:
        if name == "attention_mask":
            inputs[name] = mask
        elif name == "token_type_ids":
            inputs[name] = np.zeros_like(ids)
        else:
            inputs[name] = ids
    return inputs, mask


def pool_tokens(output: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[batch, dim] as it is, or [batch, tokens, dim] mean-pooled over the real tokens (exports
    without a pooling head)."""
    output = np.asarray(output, np.float32)
    if output.ndim != 3:
        return output
    weights = mask[..., None].astype(np.float32)
    return (output * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)


def clean_meme_text(text: str | None) -> str:
    """MemeFier's text preprocessing (source document 3.1.3), for training and serving alike: lower case,
    no punctuation, no digits, single spaces; "notext" when there is none."""
    if not isinstance(text, str):
        return "notext"
    text = text.lower().translate(_PUNCTUATION)
    text = "".join(c for c in text if not c.isdigit())
    return " ".join(text.split()) or "notext"
