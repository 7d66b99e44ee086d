"""FAISS helpers: an exact index while small, HNSW above a size, and item-level search; binary
keypoint codes get the capped multi-table hash of keypoint_index.py.

An item (image, video) owns several vectors (image windows, video frames); `owners[i]` is the item
number of vector i, and an item's score is the best of its vectors' scores.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import faiss
import numpy as np

from services.ndd.keypoint_index import KeypointIndex

AnyIndex = faiss.Index | KeypointIndex


def build_index(vectors: np.ndarray, flat_max: int, hnsw_m: int = 16, ef_construction: int = 40) -> AnyIndex:
    """Inner-product index over unit vectors: Flat up to flat_max vectors, HNSW above. uint8 vectors
    (binary keypoint descriptors) get the keypoint vote index."""
    if vectors.dtype == np.uint8:
        return KeypointIndex(vectors)
    dim = vectors.shape[1]
    if len(vectors) <= flat_max:
        index: faiss.Index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


# Appends of at most this many vectors (one image's windows: 81) run on the calling thread alone.
SERIAL_ADD_MAX = 512


@contextlib.contextmanager
def one_omp_thread() -> Iterator[None]:
    """FAISS work of this thread on one OpenMP thread. omp_set_num_threads sets the calling thread's own value,
    so concurrent searches keep theirs; it is restored afterwards."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def add_vectors(index: AnyIndex, vectors: np.ndarray) -> None:
    """Appends vectors. FAISS spreads an HNSW insertion over OpenMP threads; for one image's few dozen
    vectors that costs more than it gains, much more on a busy machine (measured at 810k vectors on the
    shared 2-core box: 118 ms per image on 2 threads, 44 ms on one)."""
    if isinstance(index, KeypointIndex) or len(vectors) > SERIAL_ADD_MAX:
        index.add(np.ascontiguousarray(vectors))
        return
    with one_omp_thread():
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))


def index_kind(index: AnyIndex) -> str:
    if isinstance(index, KeypointIndex):
        return "multihash"
    return "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat"


def vector_dimension(index: AnyIndex) -> int:
    """Columns of the arrays the index takes (bytes for binary codes)."""
    return index.d // 8 if isinstance(index, KeypointIndex) else index.d


def search_items(
    index: faiss.Index, owners: np.ndarray, queries: np.ndarray, k_items: int, k_vectors: int | None = None,
    ef_search: int = 128,
) -> list[tuple[int, float]]:
    """(item, best cosine) of the items nearest to any query vector, best first, at most k_items. Each query
    vector asks for k_vectors neighbours (default: ef_search, at least 2 * k_items); HNSW searches
    max(k, ef_search) wide. Many query vectors (an image's windows) share the work of reaching k_items
    items: 128 neighbours each shortlisted as well as 320 at 2 M vectors, in 0.4x the time."""
    if index.ntotal == 0 or len(queries) == 0:
        return []
    k = min(index.ntotal, k_vectors or max(ef_search, 2 * k_items))
    params = faiss.SearchParametersHNSW(efSearch=max(k, ef_search)) if isinstance(index, faiss.IndexHNSW) else None
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
    valid = ids.ravel() >= 0
    item = owners[ids.ravel()[valid]]
    score = scores.ravel()[valid]
    # Best score per item: sort by (item, -score), keep each item's first row; then best items first.
    order = np.lexsort((-score, item))
    item, score = item[order], score[order]
    first = np.ones(len(item), bool)
    first[1:] = item[1:] != item[:-1]
    item, score = item[first], score[first]
    best = np.argsort(-score, kind="stable")[:k_items]
    return [(int(item[i]), float(score[i])) for i in best]
