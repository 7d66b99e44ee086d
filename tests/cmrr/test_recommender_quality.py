"""Recommender quality on synthetic clustered embeddings, following source document 4.2.2: a user posts Nc areas of
interest with Ni posts each (per modality); a pool of P other users' posts holds k relevant items per area; a
recommendation is relevant when it belongs to one of the user's areas. MAP@10 is averaged over 10 queries for all
four modality pairs. The vectors go straight into the indexes the service uses, and the service's recommender runs.
"""

from __future__ import annotations

import numpy as np
import pytest

from services.cmrr.index import IndexPolicy, SpaceIndex
from services.cmrr.recommender import areas_of_interest, plan_seeds, recommend

DIM = 64
CLASSES = 200
MODALITIES = ("text", "image")


class World:
    """Classes share one centre across modalities; each modality adds its own offset (CLIP's modality gap)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.centres = rng.standard_normal((CLASSES, DIM)).astype(np.float32)
        self.gap = {m: rng.standard_normal(DIM).astype(np.float32) * 0.6 for m in MODALITIES}

    def draw(self, modality: str, label: int, n: int) -> np.ndarray:
        x = self.centres[label] + self.gap[modality] + self.rng.standard_normal((n, DIM)).astype(np.float32) * 0.9
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def average_precision_at(relevant: list[bool], k: int, total_relevant: int) -> float:
    hits, score = 0, 0.0
    for rank, rel in enumerate(relevant[:k], start=1):
        if rel:
            hits += 1
            score += hits / rank
    return score / max(1, min(k, total_relevant))


def run_query(seed: int, nc: int, ni: int, pool: int, k_relevant: int, novelty: float, outliers: int = 0):
    """One recommendation request; returns {(src, dst): [(is_relevant, seed_kind), ...]}."""
    rng = np.random.default_rng(seed)
    world = World(rng)
    labels = rng.choice(CLASSES, nc + outliers, replace=False)
    interests, odd = labels[:nc], labels[nc:]
    others = np.setdiff1d(np.arange(CLASSES), labels)
    rows: dict[str, list[tuple[int, np.ndarray]]] = {m: [] for m in MODALITIES}  # what the database would hold
    mine: dict[str, list[int]] = {m: [] for m in MODALITIES}
    label_of: dict[tuple[str, int], int] = {}

    def load_all(modality: str) -> tuple[np.ndarray, np.ndarray]:
        return np.stack([v for _, v in rows[modality]]), np.array([s for s, _ in rows[modality]], np.int64)

    indexes = {m: SpaceIndex(IndexPolicy(), lambda m=m: load_all(m)) for m in MODALITIES}

    def put(modality: str, user: str, label: int, vectors: np.ndarray) -> None:
        for v in vectors:
            slot = len(label_of)
            rows[modality].append((slot, v))
            indexes[modality].apply([], [slot], [v], len(rows[modality]))
            label_of[(modality, slot)] = int(label)
            if user == "me":
                mine[modality].append(slot)

    for m in MODALITIES:
        for label in interests:
            put(m, "me", label, world.draw(m, label, ni))
        for label in odd:  # a few posts off the user's areas: HDBSCAN outliers, the novelty seeds
            put(m, "me", label, world.draw(m, label, 1))
        for label in interests:  # k relevant items per area, posted by others
            put(m, "others", label, world.draw(m, label, k_relevant))
        for label in rng.choice(others, pool):
            put(m, "others", label, world.draw(m, label, 1))

    out = {}
    for src in MODALITIES:
        vectors = np.stack([v for slot, v in rows[src] if slot in set(mine[src])])
        seeds = plan_seeds(vectors, 10, novelty, np.random.default_rng(seed))
        for dst in MODALITIES:
            def search(queries: np.ndarray, fetch: int, dst: str = dst) -> list:
                return indexes[dst].search(queries, fetch, np.array(mine[dst], np.int64))

            picks = recommend(seeds, search, 10)
            assert len(picks) == 10
            assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)
            out[(src, dst)] = [(label_of[(dst, p.key)] in set(interests.tolist()), p.seed.kind) for p in picks]
    return out, nc * k_relevant


@pytest.mark.parametrize(
    ("setting", "nc", "ni"),
    [("Table 20 (MS-COCO augmented): Nc=1, Ni=10", 1, 10), ("Table 21 (CIFAR-100 captioned): Nc=3, Ni=100", 3, 100)],
)
def test_map_at_10_follows_the_documents_protocol(setting: str, nc: int, ni: int) -> None:
    aps: dict[tuple[str, str], list[float]] = {}
    relevant_share: dict[tuple[str, str], list[bool]] = {}
    for query in range(10):
        results, total_relevant = run_query(query, nc, ni, pool=1000, k_relevant=10, novelty=0.0)
        for pair, picks in results.items():
            aps.setdefault(pair, []).append(average_precision_at([r for r, _ in picks], 10, total_relevant))
            relevant_share.setdefault(pair, []).extend(r for r, _ in picks)
            # Without a novelty share every seed is an area of interest's medoid.
            assert {kind for _, kind in picks} == {"interest"}
    print(f"\n{setting}, P=1000, k=10, 10 queries (D3.3 reports 0.77-0.97 for CLIP and ALBEF)")
    for (src, dst), values in aps.items():
        share = np.mean(relevant_share[(src, dst)])
        print(f"  MAP@10 {src}2{dst}: {np.mean(values):.4f}   in the user's areas: {share:.0%}")
    for pair, values in aps.items():
        assert np.mean(values) >= 0.85, pair
        # Recommendations come from the user's areas of interest; a near miss now and then (more often across
        # modalities, because of the modality gap) is what real encoders do too.
        assert np.mean(relevant_share[pair]) >= (0.95 if pair[0] == pair[1] else 0.9), pair


def test_novelty_share_comes_from_outliers_and_the_rest_from_areas_of_interest() -> None:
    for query in range(5):
        results, _ = run_query(100 + query, nc=3, ni=30, pool=1000, k_relevant=10, novelty=0.2, outliers=4)
        for pair, picks in results.items():
            novel = [relevant for relevant, kind in picks if kind == "novelty"]
            interest = [relevant for relevant, kind in picks if kind == "interest"]
            assert len(novel) == 2, (pair, picks)  # 0.2 of k = 10
            assert len(interest) == 8 and all(interest), (pair, picks)


def test_areas_of_interest_are_the_clusters_and_odd_posts_are_outliers() -> None:
    rng = np.random.default_rng(3)
    world = World(rng)
    history = np.concatenate([world.draw("image", label, 30) for label in (10, 20, 30)] +
                             [world.draw("image", label, 1) for label in (40, 50, 60, 70)])
    clusters, outliers = areas_of_interest(history)
    assert len(clusters) == 3
    for members in clusters:  # each cluster is one area, not a mix
        assert len({int(i) // 30 for i in members if i < 90}) == 1 and all(i < 90 for i in members)
    assert set(range(90, 94)) <= set(outliers.tolist())


def test_every_area_gets_a_share_by_its_size() -> None:
    rng = np.random.default_rng(7)
    world = World(rng)
    sizes = [40, 20, 10]
    vectors = np.concatenate([world.draw("text", label, n) for label, n in zip((1, 2, 3), sizes, strict=True)])
    seeds = plan_seeds(vectors, 14, 0.0, rng)
    interest = sorted((s.weight, s.quota) for s in seeds if s.kind == "interest")
    assert [w for w, _ in interest] == sorted(sizes)
    assert [q for _, q in interest] == [2, 4, 8]  # proportional to 10 : 20 : 40
