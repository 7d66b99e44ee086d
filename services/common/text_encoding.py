"""What a text encoder is fed and how its output becomes one vector per text, shared by the
annotation service (TextCrossModalEmbedding) and CMRR so both give the same vector for a text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
