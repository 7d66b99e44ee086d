"""FAISS indexes over L2-normalised vectors (inner product = cosine similarity), addressed by content slot.

Below `approximate_above` vectors an exact `IndexIDMap2(IndexFlatIP)`; above it an `IndexIVFFlat` with
`nlist ≈ 4·√n` lists, searched with `nprobe` lists (bench/cmrr.py measures the speed/recall trade-off) and
retrained from the database when the collection has doubled since. A `SpaceIndex` is a cache: the database
holds every vector, and `load_all` reads them back whenever the index is rebuilt.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np

# (vectors [n, dim], slots [n]) of one space and modality, read from the database.
LoadAll = Callable[[], tuple[np.ndarray, np.ndarray]]


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


class SpaceIndex:
    """The vectors of one embedding space and one modality. Thread-safe; the database is the truth."""

    def __init__(self, policy: IndexPolicy, load_all: LoadAll, index: faiss.Index | None = None,
                 generation: int = 0) -> None:
        self.policy = policy
        self.generation = generation  # of the database state the index holds
        self._load_all = load_all
        self._lock = threading.Lock()
        self.index = index
        if index is not None and is_approximate(index):
            faiss.downcast_index(index).nprobe = policy.nprobe  # the configured value wins over the saved one
        self._trained_at = index.ntotal if index is not None and is_approximate(index) else 0

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal) if self.index is not None else 0

    @property
    def kind(self) -> str:
        return index_kind(self.index) if self.index is not None else "Flat"

    def rebuild(self, generation: int) -> None:
        vectors, slots = self._load_all()
        with self._lock:
            self._rebuild(vectors, slots, generation)

    def _rebuild(self, vectors: np.ndarray, slots: np.ndarray, generation: int) -> None:
        self.index = build_index(vectors.shape[1], vectors, slots, self.policy) if len(slots) else None
        self._trained_at = len(slots) if self.index is not None and is_approximate(self.index) else 0
        self.generation = generation

    def apply(self, removed: list[int], slots: list[int], vectors: list[np.ndarray], generation: int) -> None:
        """Brings the index up to a committed change: `removed` slots gone, `slots` added with `vectors`."""
        with self._lock:
            count = self.ntotal - len(removed) + len(slots)
            outgrown = count > self.policy.approximate_above and (
                self.index is None or not is_approximate(self.index) or count > 2 * self._trained_at)
            if (self.index is None and slots) or outgrown:  # (re)train on everything committed, this change too
                self._rebuild(*self._load_all(), generation)
                return
            if self.index is not None and removed:
                self.index.remove_ids(np.array(removed, np.int64))
            if self.index is not None and slots:
                self.index.add_with_ids(np.stack(vectors).astype(np.float32), np.array(slots, np.int64))
            self.generation = generation

    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray) -> list[list[tuple[int, float]]]:
        """Per query, up to k (slot, cosine) pairs, best first, never one of the excluded slots."""
        with self._lock:
            if self.index is None or self.index.ntotal == 0 or len(queries) == 0:
                return [[] for _ in range(len(queries))]
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.ascontiguousarray(exclude, np.int64)))
            inner = faiss.downcast_index(self.index)
            params = (faiss.SearchParametersIVF(sel=selector, nprobe=inner.nprobe) if isinstance(inner, faiss.IndexIVF)
                      else faiss.SearchParameters(sel=selector))
            k = max(1, min(k, self.index.ntotal))
            scores, slots = self.index.search(np.ascontiguousarray(queries, np.float32), k, params=params)
        return [[(int(s), float(c)) for c, s in zip(row_c, row_s, strict=True) if s >= 0]
                for row_c, row_s in zip(scores.tolist(), slots.tolist(), strict=True)]
