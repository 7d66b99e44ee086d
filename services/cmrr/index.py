"""FAISS indexes over L2-normalised vectors (inner product = cosine similarity), addressed by int64 ids.

Below `approximate_above` vectors an exact `IndexIDMap2(IndexFlatIP)`; above it an `IndexIVFFlat` with
`nlist ≈ 4·√n` lists, searched with `nprobe` lists (bench/cmrr.py measures the speed/recall trade-off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np


@dataclass(frozen=True)
class IndexPolicy:
    approximate_above: int = 100_000
    nprobe: int = 16
    # Training sample cap: k-means cost grows with it; 64 points per list is plenty for IVF.
    train_per_list: int = 64
    seed: int = 1234


def nlist_for(n: int) -> int:
    """4·√n lists, but at least 8 vectors a list so small collections still train."""
    return max(1, min(65536, int(4 * math.sqrt(max(n, 1))), n // 8))


def build_flat(dim: int, vectors: np.ndarray, ids: np.ndarray) -> faiss.Index:
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.ascontiguousarray(ids, np.int64))
    return index


def train_ivf(dim: int, sample: np.ndarray, nlist: int, nprobe: int, seed: int = 1234) -> faiss.IndexIVFFlat:
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.niter = 10  # k-means converges enough for IVF well before faiss's default 25 iterations
    index.cp.min_points_per_centroid = 1  # small samples train without complaining; quality is the bench's job
    index.train(np.ascontiguousarray(sample, np.float32))
    index.nprobe = min(nprobe, nlist)
    return index


def build_ivf(dim: int, vectors: np.ndarray, ids: np.ndarray, policy: IndexPolicy) -> faiss.IndexIVFFlat:
    nlist = nlist_for(len(ids))
    rng = np.random.default_rng(policy.seed)
    take = min(len(ids), nlist * policy.train_per_list)
    sample = vectors[np.sort(rng.choice(len(ids), take, replace=False))] if take < len(ids) else vectors
    index = train_ivf(dim, sample, nlist, policy.nprobe, policy.seed)
    index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.ascontiguousarray(ids, np.int64))
    return index


def build_index(dim: int, vectors: np.ndarray, ids: np.ndarray, policy: IndexPolicy) -> faiss.Index:
    if len(ids) > policy.approximate_above:
        return build_ivf(dim, vectors, ids, policy)
    return build_flat(dim, vectors, ids)


def is_approximate(index: faiss.Index) -> bool:
    return isinstance(faiss.downcast_index(index), faiss.IndexIVF)


def index_kind(index: faiss.Index) -> str:
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        return f"IVF{inner.nlist},Flat (nprobe {inner.nprobe})"
    return "Flat"


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) [nq, k]; missing results have id -1."""
    k = max(1, min(k, index.ntotal)) if index.ntotal else 1
    if index.ntotal == 0:
        nq = len(queries)
        return np.zeros((nq, 0), np.float32), np.zeros((nq, 0), np.int64)
    return index.search(np.ascontiguousarray(queries, np.float32), k)
