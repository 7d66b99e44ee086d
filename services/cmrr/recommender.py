"""The recommender of source document 4.2.1: a user's posts of one modality are clustered with HDBSCAN into
"areas of interest"; each cluster's medoid is a seed weighted by the cluster's size; a novelty share of the
results comes from posts HDBSCAN leaves outside every cluster (outliers); seeds search the other content and
the results are ranked by cosine similarity to the seed that found them.

Pure functions over numpy arrays and a search callable, so the quality test drives exactly this code.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

# (queries [n, dim], k) -> per query [(key, score), ...] best first, own content already excluded.
SearchFn = Callable[[np.ndarray, int], list[list[tuple[object, float]]]]

# Histories this small are not clustered: each post is its own seed.
MIN_POSTS_TO_CLUSTER = 3


@dataclass(frozen=True)
class Seed:
    vector: np.ndarray
    quota: int
    kind: str  # "interest" | "novelty" | "post"
    weight: int  # cluster size (1 for single posts and outliers)
    post: int  # index of the post the seed is (a medoid, an outlier or a single post)


@dataclass(frozen=True)
class Pick:
    key: object
    score: float
    seed: Seed


def areas_of_interest(vectors: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """(clusters as index arrays, largest first; outlier indices). Vectors are unit-norm, so euclidean distance
    orders pairs as cosine distance does."""
    import hdbscan

    n = len(vectors)
    min_cluster_size = max(2, min(15, n // 10 + 2))
    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size, min_samples=min(min_cluster_size, 3), metric="euclidean"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn deprecation chatter from inside hdbscan
        labels = clusterer.fit_predict(np.asarray(vectors, np.float64))
    clusters = [np.flatnonzero(labels == label) for label in sorted(set(labels.tolist()) - {-1})]
    clusters.sort(key=lambda members: (-len(members), int(members[0])))
    return clusters, np.flatnonzero(labels == -1)


def medoid(vectors: np.ndarray, members: np.ndarray) -> int:
    """The member with the smallest total cosine distance to the others (an actual post, unlike a mean)."""
    points = vectors[members]
    similarity_sums = (points @ points.T).sum(axis=1)
    return int(members[int(np.argmax(similarity_sums))])


def allocate(weights: Sequence[int], total: int) -> list[int]:
    """Splits total proportionally to weights (largest remainder; ties go to the earlier, larger weight)."""
    if total <= 0 or not weights:
        return [0] * len(weights)
    weight_sum = float(sum(weights))
    exact = [total * w / weight_sum for w in weights]
    shares = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def plan_seeds(vectors: np.ndarray, k: int, novelty: float, rng: np.random.Generator) -> list[Seed]:
    """The seeds for k results from one modality's posts (see the module docstring)."""
    n = len(vectors)
    if n == 0 or k <= 0:
        return []
    if n < MIN_POSTS_TO_CLUSTER:
        quotas = allocate([1] * n, k)
        return [Seed(vectors[i], quotas[i], "post", 1, i) for i in range(n)]
    try:
        clusters, outliers = areas_of_interest(vectors)
    except (ValueError, RuntimeError) as exc:  # degenerate input: recommend from the history as one area
        log.warning("HDBSCAN failed on %d posts (%s); using them as one area of interest", n, exc)
        clusters, outliers = [], np.zeros(0, np.int64)
    if not clusters:  # no structure at all: the whole history is one area
        clusters, outliers = [np.arange(n)], np.zeros(0, np.int64)
    novelty_k = min(round(novelty * k), k - 1) if len(outliers) else 0
    quotas = allocate([len(c) for c in clusters], k - novelty_k)
    seeds = []
    for members, quota in zip(clusters, quotas, strict=True):
        centre = medoid(vectors, members)
        seeds.append(Seed(vectors[centre], quota, "interest", len(members), centre))
    if novelty_k:
        chosen = rng.choice(outliers, size=min(novelty_k, len(outliers)), replace=False)
        for post, quota in zip(chosen.tolist(), allocate([1] * len(chosen), novelty_k), strict=True):
            seeds.append(Seed(vectors[post], quota, "novelty", 1, int(post)))
    return seeds


def recommend(seeds: list[Seed], search: SearchFn, k: int) -> list[Pick]:
    """Each seed takes up to its quota of its best results not taken yet; a seed that runs short leaves its
    places to the best remaining results of any seed; the picks are ranked by score."""
    if not seeds or k <= 0:
        return []
    hits = search(np.stack([s.vector for s in seeds]).astype(np.float32), k)
    taken: dict[object, Pick] = {}
    for seed, seed_hits in zip(seeds, hits, strict=True):
        got = 0
        for key, score in seed_hits:
            if got >= seed.quota:
                break
            if key not in taken:
                taken[key] = Pick(key, score, seed)
                got += 1
    if len(taken) < k:
        rest = sorted(
            ((score, i, key, seed) for i, (seed, seed_hits) in enumerate(zip(seeds, hits, strict=True))
             for key, score in seed_hits),
            key=lambda item: (-item[0], item[1]),
        )
        for score, _, key, seed in rest:
            if len(taken) >= k:
                break
            if key not in taken:
                taken[key] = Pick(key, score, seed)
    return sorted(taken.values(), key=lambda p: -p.score)[:k]
