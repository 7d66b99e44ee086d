"""FAISS helpers: an exact index while small, HNSW above a size, and item-level search.

An item (image, video) owns several vectors (image windows, video frames); `owners[i]` is the item
number of vector i, and an item's score is the best of its vectors' scores.
"""

from __future__ import annotations

import faiss
import numpy as np


def build_index(vectors: np.ndarray, flat_max: int, hnsw_m: int = 32) -> faiss.Index:
    """Inner-product index over unit vectors: Flat up to flat_max vectors, HNSW above."""
    dim = vectors.shape[1]
    if len(vectors) <= flat_max:
        index: faiss.Index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def index_kind(index: faiss.Index) -> str:
    return "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat"


def search_items(
    index: faiss.Index, owners: np.ndarray, queries: np.ndarray, k_items: int, k_vectors: int | None = None
) -> list[tuple[int, float]]:
    """(item, best cosine) of the items nearest to any query vector, best first, at most k_items."""
    if index.ntotal == 0 or len(queries) == 0:
        return []
    k = min(index.ntotal, k_vectors or max(64, 8 * k_items))
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    best: dict[int, float] = {}
    for score, vid in zip(scores.ravel(), ids.ravel(), strict=True):
        if vid < 0:
            continue
        owner = int(owners[vid])
        if score > best.get(owner, -2.0):
            best[owner] = float(score)
    return sorted(best.items(), key=lambda kv: -kv[1])[:k_items]
