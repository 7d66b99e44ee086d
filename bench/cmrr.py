"""CMRR search speed: the approximate index the service switches to (IVF, services/cmrr/index.py) against exact
Flat search, measured in the same run on the same vectors.

Data shaped like real embeddings: a mixture of clusters (centres ~ N(0, I), each point = centre + N(0, I), then
L2-normalised; queries drawn the same way). Goal: IVF top-10 single-query latency ≥ 100× faster than Flat at
recall@10 ≥ 0.95 on 1,000,000 × 512-d vectors from 10,000 clusters. The same curve on uniformly random unit vectors
shows the worst case, where no index beats a scan by much. Also: batched throughput, and the source document's
Table 18 setting (5,000 vectors, k = 5,000).

    python bench/cmrr.py --quick            # 100,000 vectors, a minute or two on 2 cores
    python bench/cmrr.py                    # the full 1,000,000 (about 4 GB of RAM, several minutes)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.cmrr.index import nlist_for, train_ivf

CHUNK = 100_000


def normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


class Mixture:
    """Points around `clusters` random centres; `clusters=0` means uniformly random on the sphere."""

    def __init__(self, dim: int, clusters: int, seed: int) -> None:
        self.dim = dim
        self.rng = np.random.default_rng(seed)
        self.centres = self.rng.standard_normal((clusters, dim), dtype=np.float32) if clusters else None

    def draw(self, n: int) -> np.ndarray:
        x = self.rng.standard_normal((n, self.dim), dtype=np.float32)
        if self.centres is not None:
            x += self.centres[self.rng.integers(0, len(self.centres), n)]
        return normalise(x)

    def chunks(self, n: int) -> Iterator[np.ndarray]:
        for start in range(0, n, CHUNK):
            yield self.draw(min(CHUNK, n - start))


def per_query_ms(index: faiss.Index, queries: np.ndarray, k: int) -> float:
    """Median latency of one query at a time, as a request sees it."""
    times = []
    for q in queries:
        start = time.perf_counter()
        index.search(q[None], k)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)]))


def curve(name: str, args: argparse.Namespace, clusters: int) -> dict:
    print(f"\n== {name}: {args.n:,} x {args.dim}-d" + (f", {clusters:,} clusters" if clusters else ""), flush=True)
    data = Mixture(args.dim, clusters, args.seed)
    nlist = args.nlist or nlist_for(args.n)
    t0 = time.perf_counter()
    sample = data.draw(min(args.n, nlist * args.train_per_list))  # a prefix of the stream is a random sample
    ivf = train_ivf(args.dim, sample, nlist, 1, args.seed)
    del sample
    train_s = time.perf_counter() - t0
    flat = faiss.IndexFlatIP(args.dim)
    t0 = time.perf_counter()
    for chunk in data.chunks(args.n):
        flat.add(chunk)
        ivf.add(chunk)
    add_s = time.perf_counter() - t0
    queries = data.draw(args.queries)
    print(f"IVF{nlist},Flat trained in {train_s:.1f} s on {nlist * args.train_per_list:,} points; "
          f"{args.n:,} vectors added to both indexes in {add_s:.1f} s", flush=True)

    t0 = time.perf_counter()
    _, truth = flat.search(queries, args.k)
    flat_batch_s = time.perf_counter() - t0
    latency_q = queries[: args.latency_queries]
    flat_ms = per_query_ms(flat, latency_q, args.k)
    print(f"Flat (exact): {flat_ms:.2f} ms/query, {len(queries) / flat_batch_s:,.0f} queries/s batched")
    print(f"{'nprobe':>7} {'recall@10':>10} {'ms/query':>9} {'speedup':>8} {'queries/s':>10}")
    rows = []
    for nprobe in args.nprobes:
        if nprobe > nlist:
            break
        ivf.nprobe = nprobe
        t0 = time.perf_counter()
        _, found = ivf.search(queries, args.k)
        batch_s = time.perf_counter() - t0
        ms = per_query_ms(ivf, latency_q, args.k)
        row = {"nprobe": nprobe, "recall": recall_at(found, truth), "ms": ms, "speedup": flat_ms / ms,
               "qps": len(queries) / batch_s}
        rows.append(row)
        print(f"{nprobe:>7} {row['recall']:>10.3f} {ms:>9.3f} {row['speedup']:>7.0f}x {row['qps']:>10,.0f}", flush=True)
    del flat, ivf
    good = [r for r in rows if r["recall"] >= args.target_recall]
    best = max(good, key=lambda r: r["speedup"]) if good else None
    return {"name": name, "flat_ms": flat_ms, "flat_qps": len(queries) / flat_batch_s, "rows": rows, "best": best}


def table18(seed: int) -> None:
    """The source document's setting: 5,000 contents, k = 5,000 (every content ranked), one query."""
    print("\n== Table 18 setting: 5,000 vectors, k = 5,000 (ms per query, median of 20)")
    print(f"{'method':<24} {'dim':>4} {'ms':>8}   (D3.3 reports: vanilla cosine 129.31, faiss CLIP 0.72, ALBEF 0.56)")
    rng = np.random.default_rng(seed)
    for dim in (512, 256):
        base = rng.standard_normal((5000, dim), dtype=np.float32)
        query = rng.standard_normal((1, dim), dtype=np.float32)

        def vanilla(base: np.ndarray = base, query: np.ndarray = query) -> None:
            # What a service without an index does: normalise, one cosine per content, sort them all.
            sims = [float(np.dot(b, query[0]) / (np.linalg.norm(b) * np.linalg.norm(query[0]))) for b in base]
            sorted(range(len(sims)), key=lambda i: -sims[i])

        def numpy_scan(base: np.ndarray = base, query: np.ndarray = query) -> None:
            b = base / np.linalg.norm(base, axis=1, keepdims=True)
            np.argsort(-(b @ (query[0] / np.linalg.norm(query[0]))))

        index = faiss.IndexFlatIP(dim)
        index.add(normalise(base.copy()))
        q = normalise(query.copy())

        def faiss_flat(index: faiss.Index = index, q: np.ndarray = q) -> None:
            index.search(q, 5000)

        for name, fn in (("vanilla cosine (python)", vanilla), ("numpy scan + argsort", numpy_scan),
                         ("faiss Flat", faiss_flat)):
            times = []
            for _ in range(20 if name != "vanilla cosine (python)" else 3):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            print(f"{name:<24} {dim:>4} {1000 * statistics.median(times):>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 vectors from 1,000 clusters")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=500, help="queries for recall and throughput")
    parser.add_argument("--latency-queries", type=int, default=100, help="queries timed one at a time")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nlist", type=int, default=0, help="IVF lists (default: the service's 4·√n)")
    parser.add_argument("--train-per-list", type=int, default=32)
    parser.add_argument("--nprobes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--goal", type=float, default=100.0, help="speedup goal at the target recall")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-uniform", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.n, args.clusters, args.queries, args.latency_queries = 100_000, 1_000, 200, 50
    faiss.omp_set_num_threads(args.threads)
    print(f"faiss {faiss.__version__}, {args.threads} threads; single-query latency is the median of "
          f"{args.latency_queries} queries, one at a time")

    results = [curve("clustered (shaped like real embeddings)", args, args.clusters)]
    if not args.skip_uniform:
        results.append(curve("uniform random unit vectors (worst case)", args, 0))
    table18(args.seed)

    print("\n== summary")
    for res in results:
        best = res["best"]
        if best is None:
            top = max(res["rows"], key=lambda r: r["recall"])
            print(f"{res['name']}: no nprobe reached recall@10 {args.target_recall}; best recall {top['recall']:.3f} "
                  f"at nprobe {top['nprobe']} ({top['speedup']:.1f}x Flat)")
            continue
        print(f"{res['name']}: IVF nprobe {best['nprobe']} is {best['speedup']:.0f}x faster than Flat "
              f"({best['ms']:.3f} vs {res['flat_ms']:.2f} ms/query) at recall@10 {best['recall']:.3f}; "
              f"throughput {best['qps']:,.0f} vs {res['flat_qps']:,.0f} queries/s batched")
    clustered = results[0]["best"]
    ok = clustered is not None and clustered["speedup"] >= args.goal
    print(f"GOAL (≥{args.goal:.0f}x at recall@10 ≥ {args.target_recall}, clustered): {'MET' if ok else 'NOT MET'}"
          + ("" if args.n >= 1_000_000 else f" (at n = {args.n:,}; the goal is stated for 1,000,000)"))


if __name__ == "__main__":
    main()
