"""Clustering face embeddings into persons. Pure numpy/scipy, no database.

`density_clusters` is DBSCAN on cosine similarity (a face is core with at least `min_samples` faces,
itself included, at cosine >= `similarity`; cores linked through such pairs form a person; a non-core face
within reach of a core joins its most similar core's person; the rest are noise). It computes the
similarity graph in blocks of float32 matrix products (BLAS) and links it with scipy's connected
components, where scikit-learn's DBSCAN (bench/people.py compares the two) keeps float64 neighbour lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

NOISE = -1
_BLOCK_BYTES = 64 * 2**20  # the similarity block a pass holds at once


def normalise(vectors: np.ndarray | list[list[float]]) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        x = x.reshape(len(x), -1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _edges(x: np.ndarray, similarity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i, j), i != j, with cosine >= similarity, and that cosine (both directions). Each block
    of rows is multiplied only with the rows from its own start on: the similarity is symmetric."""
    n = len(x)
    block = max(1, _BLOCK_BYTES // max(1, 4 * n))
    rows, cols, sims = [], [], []
    for start in range(0, n, block):
        s = x[start:start + block] @ x[start:].T
        i, j = np.nonzero(s >= similarity)
        keep = j > i  # column j of this block is row start + j
        i, j = i[keep], j[keep]
        rows.append(i + start)
        cols.append(j + start)
        sims.append(s[i, j])
    if not rows:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    i, j, s = np.concatenate(rows), np.concatenate(cols), np.concatenate(sims)
    return np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([s, s])


def density_clusters(vectors: np.ndarray, similarity: float, min_samples: int) -> np.ndarray:
    """Labels 0..k-1 per row (NOISE for faces in no person); rows need not be normalised."""
    n = len(vectors)
    labels = np.full(n, NOISE, dtype=np.int64)
    if n == 0:
        return labels
    x = normalise(vectors)
    i, j, s = _edges(x, similarity)
    core = np.bincount(i, minlength=n) + 1 >= min_samples  # +1: the face itself
    both = core[i] & core[j]
    graph = coo_matrix((np.ones(int(both.sum()), np.int8), (i[both], j[both])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    core_ids = np.flatnonzero(core)
    # Renumber the components holding cores 0..k-1, in order of first appearance.
    _, first = np.unique(component[core_ids], return_index=True)
    order = component[core_ids][np.sort(first)]
    renumber = {int(c): k for k, c in enumerate(order)}
    labels[core_ids] = [renumber[int(c)] for c in component[core_ids]]
    # Border faces: the person of their most similar core neighbour.
    border = ~core[i] & core[j]
    if border.any():
        bi, bj, bs = i[border], j[border], s[border]
        best = np.lexsort((-bs, bi))
        bi, bj = bi[best], bj[best]
        firsts = np.concatenate(([True], bi[1:] != bi[:-1]))
        labels[bi[firsts]] = labels[bj[firsts]]
    return labels


def centroid(vectors: np.ndarray) -> np.ndarray:
    """The unit mean direction of a person's faces."""
    return normalise(normalise(vectors).mean(axis=0, keepdims=True))[0]


@dataclass
class FaceRow:
    """What re-clustering knows of one stored face."""

    id: int
    vector: np.ndarray
    person: int | None  # current person
    pinned: bool  # placed by a user (moved/confirmed): stays with its person
    rejected: frozenset[int] = frozenset()  # persons a user said it is not


@dataclass
class Plan:
    # face id -> existing person id, or ("new", k) for the k-th new person, or None (waiting)
    assignment: dict[int, int | tuple[str, int] | None]
    new_persons: int


def plan_recluster(faces: list[FaceRow], named: set[int], similarity: float, min_samples: int,
                   join_similarity: float) -> Plan:
    """A full re-clustering that keeps what users said: pinned faces stay, rejected pairs never form, a
    cluster keeps the person most of its faces were in (several clusters may keep one named person: the
    user merged them), others become new persons; faces left out then join the nearest person within
    `join_similarity`, or wait."""
    if not faces:
        return Plan({}, 0)
    x = normalise(np.stack([f.vector for f in faces]))
    labels = density_clusters(x, similarity, min_samples)
    clusters: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        if label != NOISE and not faces[index].pinned:
            clusters.setdefault(int(label), []).append(index)
    votes = []
    for label, members in clusters.items():
        counts: dict[int, int] = {}
        for index in members:
            person = faces[index].person
            if person is not None:
                counts[person] = counts.get(person, 0) + 1
        votes += [(n, label, person) for person, n in counts.items()]
    target: dict[int, int | tuple[str, int]] = {}
    taken: set[int] = set()
    for _, label, person in sorted(votes, key=lambda v: (-v[0], v[1], v[2])):
        if label in target or (person in taken and person not in named):
            continue
        target[label] = person
        taken.add(person)
    new = 0
    for label in sorted(clusters):
        if label not in target:
            target[label] = ("new", new)
            new += 1
    assignment: dict[int, int | tuple[str, int] | None] = {}
    for index, face in enumerate(faces):
        if face.pinned:
            assignment[face.id] = face.person
            continue
        label = int(labels[index])
        to = target.get(label) if label != NOISE else None
        assignment[face.id] = None if isinstance(to, int) and to in face.rejected else to
    # Left-out faces join the nearest resulting person within join_similarity.
    groups: dict[int | tuple[str, int], list[int]] = {}
    for index, face in enumerate(faces):
        to = assignment[face.id]
        if to is not None:
            groups.setdefault(to, []).append(index)
    if groups:
        keys = list(groups)
        centres = np.stack([centroid(x[groups[k]]) for k in keys])
        for index, face in enumerate(faces):
            if assignment[face.id] is not None:
                continue
            sims = centres @ x[index]
            for best in np.argsort(-sims):
                key = keys[int(best)]
                if sims[best] < join_similarity:
                    break
                if not (isinstance(key, int) and key in face.rejected):
                    assignment[face.id] = key
                    break
    return Plan(assignment, new)
