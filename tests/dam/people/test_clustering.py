"""The density clustering and the re-clustering plan (pure): DBSCAN semantics matching scikit-learn's,
what users said (pins, rejections, names, merges) surviving a full re-cluster."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import DBSCAN

from services.dam.people.clustering import NOISE, FaceRow, density_clusters, normalise, plan_recluster


def _people(n_people: int, per: int, dim: int = 64, spread: float = 0.25, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = normalise(rng.normal(size=(n_people, dim)))
    x = np.repeat(centres, per, 0) + rng.normal(scale=spread / np.sqrt(dim), size=(n_people * per, dim))
    return normalise(x), np.repeat(np.arange(n_people), per)


@pytest.mark.parametrize("similarity,min_samples", [(0.8, 2), (0.9, 3), (0.95, 5)])
def test_same_persons_as_sklearn_dbscan(similarity, min_samples):
    x, _ = _people(30, 8, spread=0.45)
    ours = density_clusters(x, similarity, min_samples)
    theirs = DBSCAN(eps=1 - similarity, min_samples=min_samples, metric="cosine", algorithm="brute").fit_predict(x)
    assert ((ours == NOISE) == (theirs == NOISE)).all()
    # The same partition of the non-noise faces (labels may be numbered differently).
    pairs = {(int(a), int(b)) for a, b in zip(ours, theirs, strict=True) if a != NOISE}
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def test_well_separated_people_are_found_exactly_and_strangers_wait():
    x, truth = _people(5, 6)
    stranger = normalise(np.random.default_rng(9).normal(size=(1, x.shape[1])))
    labels = density_clusters(np.concatenate([x, stranger]), 0.7, 2)
    assert labels[-1] == NOISE
    assert len(set(labels[:-1].tolist())) == 5
    for person in range(5):
        assert len(set(labels[:-1][truth == person].tolist())) == 1


def test_a_lone_face_never_forms_a_person_and_empty_input_is_fine():
    assert density_clusters(np.zeros((0, 8)), 0.5, 2).tolist() == []
    assert density_clusters(np.ones((1, 8)), 0.5, 2).tolist() == [NOISE]
    assert density_clusters(np.ones((1, 8)), 0.5, 1).tolist() == [0]


def _rows(x, persons, pinned=(), rejected=None):
    rejected = rejected or {}
    return [FaceRow(i + 1, x[i], persons[i], i in pinned, frozenset(rejected.get(i, ()))) for i in range(len(x))]


def test_recluster_keeps_existing_person_ids_and_makes_new_ones():
    x, _ = _people(3, 4)
    persons = [10] * 4 + [20] * 4 + [None] * 4  # the third person's faces waited
    plan = plan_recluster(_rows(x, persons), set(), 0.7, 2, 0.7)
    assert plan.new_persons == 1
    assert [plan.assignment[i + 1] for i in range(8)] == [10] * 4 + [20] * 4
    assert {plan.assignment[i + 1] for i in range(8, 12)} == {("new", 0)}


def test_recluster_keeps_rejections_pins_and_named_merges():
    x, _ = _people(2, 4)
    # A user merged both clusters into named person 7, rejected face 0 from it and pinned face 5 to person 9.
    persons = [7] * 4 + [7, 9, 7, 7]
    plan = plan_recluster(_rows(x, persons, pinned={5}, rejected={0: {7}}), {7}, 0.7, 2, 0.7)
    assert plan.assignment[1] is None  # rejected: not back in 7, and no other person takes it
    assert plan.assignment[6] == 9  # pinned
    assert all(plan.assignment[i] == 7 for i in (2, 3, 4, 5, 7, 8))  # both clusters stay the named person
    assert plan.new_persons == 0


def test_an_unnamed_person_split_by_density_keeps_its_id_once():
    x, _ = _people(2, 4)
    plan = plan_recluster(_rows(x, [3] * 8), set(), 0.7, 2, 0.99)
    ids = {plan.assignment[i + 1] for i in range(8)}
    assert 3 in ids and ("new", 0) in ids and plan.new_persons == 1
