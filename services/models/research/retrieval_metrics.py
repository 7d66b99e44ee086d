"""Cross-modal retrieval recall (source document Tables 16–17): image→text R@K counts an image as found when
any of its captions ranks in the top K, text→image when the caption's own image does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall_at_k(
    similarity: np.ndarray, caption_image: Sequence[int], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """`similarity` [images, captions]; `caption_image[j]` is the image of caption j."""
    similarity = np.asarray(similarity, np.float64)
    owner = np.asarray(caption_image)
    if similarity.ndim != 2 or similarity.shape[1] != owner.size:
        raise ValueError(f"similarity {similarity.shape} does not match {owner.size} captions")
    images = similarity.shape[0]
    # Rank of each image's best-ranked own caption, and of each caption's own image.
    order = np.argsort(-similarity, axis=1, kind="stable")
    image_rank = np.array([np.flatnonzero(owner[order[i]] == i).min() for i in range(images)])
    caption_order = np.argsort(-similarity.T, axis=1, kind="stable")
    caption_rank = np.array([np.flatnonzero(caption_order[j] == owner[j])[0] for j in range(owner.size)])
    out = {}
    for k in ks:
        out[f"i2t_r@{k}"] = float(np.mean(image_rank < k))
        out[f"t2i_r@{k}"] = float(np.mean(caption_rank < k))
    return out
