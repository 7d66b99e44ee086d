"""People clustering: N synthetic face embeddings drawn around ~1,000 identities, clustered into persons by
the DAM's density clustering (services/dam/people/clustering.py: DBSCAN on cosine via blocked float32
matrix products + scipy connected components) and by scikit-learn's DBSCAN (metric="cosine", brute
force, the same eps and min_samples) in the same run: pairwise precision / recall / F1, BCubed F1, persons
found, wall time, and the speed ratio. Then the incremental path: the cost per new face of joining the
nearest person centre (what the DAM does on arrival) against re-clustering everything for it.

Synthetic faces: identity centres uniform on the unit sphere (dimension --dim, default 512 like ArcFace),
faces = centre + Gaussian noise scaled so same-person cosine is ~0.53 and other-person ~0.16;
identity sizes follow a Zipf-like law (many people with few faces, a few with many); --outliers of the faces
are one-off strangers. Threshold: cosine >= 0.45 (eps 0.55), min_samples 2.

    .venv/bin/python bench/people.py [--sizes 10000,30000,100000] [--identities 1000] [--dim 512]
        [--sklearn-max 100000] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.dam.people.clustering import NOISE, centroid, density_clusters, normalise


def synthetic(n: int, identities: int, dim: int, outliers: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Faces of different people are not orthogonal (they are all faces): centres share a common direction,
    # so two identities' centres have cosine ~0.3, as a face descriptor's unrelated faces do.
    common = normalise(rng.normal(size=(1, dim)))
    centres = normalise(np.sqrt(0.3) * common + np.sqrt(0.7) * normalise(rng.normal(size=(identities, dim))))
    weights = 1.0 / np.arange(1, identities + 1) ** 0.6
    strangers = int(n * outliers)
    truth = rng.choice(identities, size=n - strangers, p=weights / weights.sum())
    # Noise per dimension so that |noise| ~ 0.95: cos(face, face') ~ 0.53 for one person, ~0.16 for two.
    sigma = 0.95 / np.sqrt(dim)
    faces = centres[truth] + rng.normal(scale=sigma, size=(len(truth), dim))
    x = np.concatenate([faces, rng.normal(size=(strangers, dim))]).astype(np.float32)
    labels = np.concatenate([truth, identities + np.arange(strangers)])
    order = rng.permutation(n)
    return normalise(x[order]), labels[order]


def _singletons(labels: np.ndarray) -> np.ndarray:
    """Noise points as persons of their own (a face that waits is nobody's person yet)."""
    out = labels.astype(np.int64).copy()
    noise = out == NOISE
    out[noise] = out.max(initial=0) + 1 + np.arange(int(noise.sum()))
    return out


def scores(truth: np.ndarray, found: np.ndarray) -> dict[str, float]:
    """Pairwise precision/recall/F1 and BCubed F1 from the contingency table."""
    found = _singletons(found)
    _, t = np.unique(truth, return_inverse=True)
    _, f = np.unique(found, return_inverse=True)
    pairs = np.unique(t.astype(np.int64) * (f.max() + 1) + f, return_counts=True)[1].astype(np.float64)
    t_sizes = np.bincount(t).astype(np.float64)
    f_sizes = np.bincount(f).astype(np.float64)
    same_both = (pairs * (pairs - 1) / 2).sum()
    same_found = (f_sizes * (f_sizes - 1) / 2).sum()
    same_truth = (t_sizes * (t_sizes - 1) / 2).sum()
    precision = same_both / same_found if same_found else 1.0
    recall = same_both / same_truth if same_truth else 1.0
    # BCubed: per point, |its cluster ∩ its class| / |its cluster| (precision) and / |its class| (recall).
    key = t.astype(np.int64) * (f.max() + 1) + f
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    inter = counts[inverse].astype(np.float64)
    bp = float((inter / f_sizes[f]).mean())
    br = float((inter / t_sizes[t]).mean())
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / max(precision + recall, 1e-12),
            "bcubed_f1": 2 * bp * br / max(bp + br, 1e-12),
            }


def _row(name: str, seconds: float, truth: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    s = scores(truth, labels)
    persons = len(set(labels.tolist()) - {NOISE})
    noise = int((labels == NOISE).sum())
    print(f"  {name:<22} {seconds:8.2f} s  pairwise P {s['precision']:.4f} R {s['recall']:.4f} "
          f"F1 {s['f1']:.4f}  BCubed F1 {s['bcubed_f1']:.4f}  persons {persons}  waiting {noise}", flush=True)
    return {**s, "seconds": seconds}


def incremental(x: np.ndarray, labels: np.ndarray, trials: int = 2000) -> tuple[float, float]:
    """Seconds per new face joining the nearest centre (matrix of all person centres), and the share of
    new faces placed in the person that their identity's other faces are in."""
    persons = sorted(set(labels.tolist()) - {NOISE})
    centres = np.stack([centroid(x[labels == p]) for p in persons])
    rng = np.random.default_rng(1)
    picks = rng.choice(len(x), size=min(trials, len(x)), replace=False)
    started = time.perf_counter()
    joined = 0
    for i in picks:
        sims = centres @ x[i]
        best = int(np.argmax(sims))
        joined += bool(sims[best] >= 0.45)
    per_face = (time.perf_counter() - started) / len(picks)
    return per_face, joined / len(picks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--outliers", type=float, default=0.02)
    parser.add_argument("--similarity", type=float, default=0.45)
    parser.add_argument("--min-samples", type=int, default=2)
    parser.add_argument("--sklearn-max", type=int, default=100_000, help="Skip scikit-learn above this N.")
    parser.add_argument("--quick", action="store_true", help="N = 3,000 only.")
    args = parser.parse_args()
    from sklearn.cluster import DBSCAN

    sizes = [3000] if args.quick else [int(s) for s in args.sizes.split(",")]
    print(f"identities {args.identities}, dim {args.dim}, outliers {args.outliers:.0%}, "
          f"cosine >= {args.similarity}, min_samples {args.min_samples}")
    for n in sizes:
        x, truth = synthetic(n, args.identities, args.dim, args.outliers)
        print(f"N = {n}:")
        started = time.perf_counter()
        ours = density_clusters(x, args.similarity, args.min_samples)
        ours_s = time.perf_counter() - started
        mine = _row("maam density_clusters", ours_s, truth, ours)
        if n <= args.sklearn_max:
            started = time.perf_counter()
            theirs = DBSCAN(eps=1 - args.similarity, min_samples=args.min_samples, metric="cosine",
                            algorithm="brute", n_jobs=1).fit_predict(x)
            sk_s = time.perf_counter() - started
            ref = _row("sklearn DBSCAN", sk_s, truth, theirs)
            agree = scores(_singletons(theirs), ours)["f1"]
            print(f"  speed-up vs sklearn: {sk_s / ours_s:.1f}x  (F1 {mine['f1']:.4f} vs {ref['f1']:.4f}; "
                  f"pairwise agreement of the two labelings F1 {agree:.4f})", flush=True)
        per_face, joined = incremental(x, ours)
        print(f"  incremental: {per_face * 1e6:.0f} µs per new face against "
              f"{len(set(ours.tolist()) - {NOISE})} person centres ({joined:.1%} joined one); "
              f"re-clustering everything instead: {ours_s:.2f} s ({ours_s / per_face:,.0f}x)", flush=True)


if __name__ == "__main__":
    main()
