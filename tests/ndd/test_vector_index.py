"""services/ndd/vector_index.py: the index kind by size, HNSW built and searched with the configured breadth,
and item-level search equal to the exact index's where HNSW finds the same neighbours."""

from __future__ import annotations

import faiss
import numpy as np

from services.ndd.core.config import NddSettings
from services.ndd.vector_index import build_index, index_kind, search_items


def _unit(rng: np.random.Generator, n: int, dim: int = 63) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_hnsw_above_flat_max_with_the_settings_breadth_and_items_as_the_exact_index_finds_them() -> None:
    rng = np.random.default_rng(0)
    settings = NddSettings()
    # 300 items of 20 vectors each; a query is a noisy copy of some of one item's vectors.
    vectors = _unit(rng, 6000)
    owners = np.repeat(np.arange(300), 20)
    exact = build_index(vectors, flat_max=10**6)
    hnsw = build_index(vectors, flat_max=1000, hnsw_m=settings.hnsw_m, ef_construction=settings.hnsw_ef_construction)
    assert (index_kind(exact), index_kind(hnsw)) == ("flat", "hnsw")
    assert isinstance(hnsw, faiss.IndexHNSWFlat)
    assert hnsw.hnsw.efConstruction == settings.hnsw_ef_construction
    assert hnsw.hnsw.nb_neighbors(0) == 2 * settings.hnsw_m  # level 0 holds 2 M links
    agree = 0
    for item in rng.choice(300, 40, replace=False):
        rows = owners == item
        queries = vectors[rows][:8] + 0.05 * rng.standard_normal((8, 63)).astype(np.float32)
        found = search_items(hnsw, owners, queries, 10, ef_search=settings.hnsw_ef_search)
        truth = search_items(exact, owners, queries, 10)
        assert found[0][0] == truth[0][0] == item
        agree += [i for i, _ in found] == [i for i, _ in truth]
    assert agree >= 36, agree  # the whole top 10 as the exact index has it, nearly always


def test_a_narrow_search_asks_fewer_neighbours_but_never_fewer_than_the_items_need() -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 3000)
    owners = np.arange(3000)  # one vector per item: k_items neighbours are needed
    hnsw = build_index(vectors, flat_max=100)
    found = search_items(hnsw, owners, vectors[:2], 200, ef_search=16)
    assert len(found) == 200 == len({i for i, _ in found})
    assert {i for i, _ in found[:2]} == {0, 1} and all(abs(s - 1.0) < 1e-5 for _, s in found[:2])
