"""FAISS helpers: an exact index while small, HNSW above a size, and item-level search.

An item (image, video) owns several vectors (image windows, video frames); `owners[i]` is the item
number of vector i, and an item's score is the best of its vectors' scores.
"""

from __future__ import annotations

import faiss
import numpy as np

# Keypoint (binary) indexes: multi-table LSH on Hamming space, no training needed.
HASH_TABLES = 8
HASH_BITS = 16
# A query keypoint votes for the item of its nearest indexed keypoint when this close (of 256 bits)...
VOTE_MAX_HAMMING = 50
# ... and clearly closer than the second nearest, unless both belong to the same item.
VOTE_RATIO = 0.8


def build_index(vectors: np.ndarray, flat_max: int, hnsw_m: int = 32) -> faiss.Index | faiss.IndexBinary:
    """Inner-product index over unit vectors: Flat up to flat_max vectors, HNSW above. uint8 vectors
    (binary keypoint descriptors) get a multi-hash Hamming index."""
    if vectors.dtype == np.uint8:
        binary = faiss.IndexBinaryMultiHash(vectors.shape[1] * 8, HASH_TABLES, HASH_BITS)
        if len(vectors):
            binary.add(np.ascontiguousarray(vectors))
        return binary
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


def index_kind(index: faiss.Index | faiss.IndexBinary) -> str:
    if isinstance(index, faiss.IndexBinary):
        return "multihash"
    return "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat"


def vector_dimension(index: faiss.Index | faiss.IndexBinary) -> int:
    """Columns of the arrays the index takes (bytes for binary indexes)."""
    return index.d // 8 if isinstance(index, faiss.IndexBinary) else index.d


def vote_items(index: faiss.IndexBinary, owners: np.ndarray, descriptors: np.ndarray, k_items: int
               ) -> list[tuple[int, float]]:
    """(item, votes) of the items whose keypoints match most query keypoints, most votes first."""
    if not isinstance(index, faiss.IndexBinary) or index.ntotal == 0 or len(descriptors) == 0:
        return []
    distances, ids = index.search(np.ascontiguousarray(descriptors, dtype=np.uint8), 2)
    votes: dict[int, int] = {}
    for (d1, d2), (i1, i2) in zip(distances, ids, strict=True):
        if i1 < 0 or d1 >= VOTE_MAX_HAMMING:
            continue
        owner = int(owners[i1])
        if i2 < 0 or d1 < VOTE_RATIO * d2 or int(owners[i2]) == owner:
            votes[owner] = votes.get(owner, 0) + 1
    return sorted(((o, float(v)) for o, v in votes.items()), key=lambda kv: -kv[1])[:k_items]


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
