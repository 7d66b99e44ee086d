"""DAM speed: ingest throughput over the REST API and search latency (text, facets, kNN) at 10k and 100k assets.

Ingest: images uploaded over real HTTP to a real DAM process (4 concurrent clients), with the annotation service
down (annotation excluded: store + outbox only) and up (annotation included: until every asset is annotated by
every test model of the real annotation service over gRPC). Baseline in the same run: hashing and writing
the same bytes to disk.

Search: N synthetic assets written straight into PostgreSQL (titles/tags/captions from a Zipf vocabulary, objects,
flags, owners, 512-d vectors shaped like real embeddings: a mixture of clusters, centres ~ N(0, I), point = centre +
N(0, I), L2-normalised, queries drawn the same way), then the `postgres` backend's own search code is timed.
Each kNN figure stands next to an exact scan of the same vectors (index scans off, same filters) in the same run:
latency ratio and recall@10. Goal: kNN p95 <= 50 ms at 100k with recall@10 >= 0.95, also with a filter.

    python bench/dam.py --quick      # 10k assets (a few minutes on 2 shared cores)
    python bench/dam.py              # 10k and 100k
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import random
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, text

from services.dam.core.config import DamOptions, DamSettings
from services.dam.core.db import Database, run_migrations, start_embedded_postgres, stop_embedded_postgres
from services.dam.search import facet_counts
from services.dam.search.base import SearchQuery
from services.dam.search.postgres import PostgresSearch, _distance, where_clause
from services.dam.spaces import Space, hnsw_index_sql, register

USERS = 10
OBJECTS = [f"class_{i}" for i in range(80)]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def mixture(n: int, dim: int, clusters: int, rng: np.random.Generator, centres: np.ndarray | None = None):
    centres = rng.standard_normal((clusters, dim)).astype(np.float32) if centres is None else centres
    points = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, dim)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points, centres


def vocabulary(rng: np.random.Generator, size: int = 5000) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return sorted({"".join(rng.choice(letters, rng.integers(4, 10))) for _ in range(size)})


# ---------------------------------------------------------------------------------------------- search

SPACE = "bench_clip"


async def populate(db: Database, n: int, dim: int, rng: np.random.Generator, words: list[str]
                   ) -> tuple[np.ndarray, Space]:
    vectors, centres = mixture(n, dim, max(10, n // 100), rng)
    zipf = np.minimum(rng.zipf(1.3, (n, 12)) - 1, len(words) - 1)
    async with db.sessions.begin() as session:
        space = await register(session, SPACE, dim)
    async with db.engine.begin() as conn:
        for uid in range(1, USERS + 1):
            await conn.execute(text("INSERT INTO users (id, email, password_hash) VALUES (:i, :e, 'x') "
                                    "ON CONFLICT DO NOTHING"), {"i": uid, "e": f"bench{uid}@example.org"})
        raw = await conn.get_raw_connection()
        pg = raw.driver_connection
        async with pg.cursor() as cur:
            async with cur.copy("COPY assets (id, owner_id, visibility, title, mime, kind, size, sha256, "
                                "annotation_state) FROM STDIN") as copy:
                for i in range(n):
                    await copy.write_row((i + 1, i % USERS + 1, "public" if i % 2 else "private", f"asset {i}",
                                          "image/jpeg", "image", 1000, f"{i:064x}", "done"))
            async with cur.copy("COPY search_docs (asset_id, owner_id, visibility, kind, mime, title, tags, "
                                "captions, objects, nsfw, meme, annotation_types, uploaded_at, space_ids) "
                                "FROM STDIN") as copy:
                for i in range(n):
                    title = " ".join(words[j] for j in zipf[i, :4])
                    caption = " ".join(words[j] for j in zipf[i, 4:12])
                    objs = sorted({OBJECTS[j] for j in rng.integers(0, len(OBJECTS), rng.integers(0, 4))})
                    await copy.write_row((
                        i + 1, i % USERS + 1, "public" if i % 2 else "private", "image", "image/jpeg", title,
                        "{" + ",".join(words[j] for j in zipf[i, :2]) + "}", caption, "{" + ",".join(objs) + "}",
                        bool(rng.random() < 0.05), bool(rng.random() < 0.1),
                        "{object_detection,cross_modal_embedding}",
                        f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} 12:00:00+00",
                        "{" + str(space.id) + "}"))  # every document has a vector in the space (below)
            # COPY's text format of a vector (the wire format, bulk-loaded; the service itself binds vectors
            # through pgvector's SQLAlchemy type).
            async with cur.copy("COPY search_vectors (asset_id, space_id, embedding) FROM STDIN") as copy:
                for i in range(n):
                    await copy.write_row((i + 1, space.id, "[" + ",".join(f"{v:.5f}" for v in vectors[i]) + "]"))
        await conn.execute(text("UPDATE search_docs SET tsv = setweight(to_tsvector('english', title), 'A') || "
                                "setweight(to_tsvector('english', array_to_string(tags, ' ')), 'A') || "
                                "setweight(to_tsvector('english', captions), 'B')"))
        await conn.execute(text("SET maintenance_work_mem = '1GB'"))
        await conn.execute(text("SET max_parallel_maintenance_workers = 2"))
        await conn.execute(text(hnsw_index_sql(space) or "SELECT 1"))
        await conn.execute(text("ANALYZE search_docs"))
        await conn.execute(text("ANALYZE search_vectors"))
    return centres, space


async def exact(db: Database, query: SearchQuery, space: Space) -> tuple[list[int], float]:
    """The same filtered kNN with index scans off: PostgreSQL compares every vector."""
    from pgvector.sqlalchemy import Vector
    from sqlalchemy import bindparam

    where, params = where_clause(query, space)
    params |= {"vec": query.vector, "k": query.size}
    async with db.sessions.begin() as session:
        await session.execute(text("SET LOCAL enable_indexscan = off"))
        await session.execute(text("SET LOCAL enable_bitmapscan = off"))
        started = time.perf_counter()
        rows = (await session.execute(text(
            f"SELECT d.asset_id FROM search_vectors v JOIN search_docs d ON d.asset_id = v.asset_id WHERE {where} "
            f"ORDER BY {_distance(space)}, d.asset_id LIMIT :k").bindparams(bindparam("vec", type_=Vector(space.dim))),
            params)).all()
        return [r[0] for r in rows], time.perf_counter() - started


async def time_search(backend: PostgresSearch, queries: list[SearchQuery]) -> tuple[list[float], list[list[int]]]:
    latencies, results = [], []
    for query in queries:
        started = time.perf_counter()
        page = await backend.search(query)
        latencies.append(time.perf_counter() - started)
        results.append([h.asset_id for h in page.hits])
    return latencies, results


async def search_bench(n: int, dim: int, queries: int, ef_values: list[int], seed: int = 0,
                       explain: bool = False) -> None:
    rng = np.random.default_rng(seed)
    words = vocabulary(rng)
    workdir = Path(tempfile.mkdtemp(prefix="maam-bench-pg-"))
    url = start_embedded_postgres(workdir / "pg")
    run_migrations(url)
    db = Database(url, DamSettings(dam=DamOptions(database_url=url)))
    started = time.perf_counter()
    centres, space = await populate(db, n, dim, rng, words)
    print(f"\n== {n:,} assets, {dim}-d vectors from {max(10, n // 100)} clusters "
          f"(populated + HNSW built in {time.perf_counter() - started:.0f} s)")
    top_words = words[:50]
    qvecs, _ = mixture(queries, dim, 0, rng, centres)
    viewer = lambda i: 1 + i % USERS  # noqa: E731
    text_q = [SearchQuery(viewer_id=viewer(i), q=random.Random(i).choice(top_words), facets=False)
              for i in range(queries)]
    facet_q = [SearchQuery(viewer_id=viewer(i), q=None, kinds=["image"], facets=True) for i in range(queries)]
    backend = PostgresSearch(db.sessions, ef_search=ef_values[0])
    await time_search(backend, text_q[:5])  # warm caches
    with_facets = [SearchQuery(**{**q.__dict__, "facets": True}) for q in text_q]
    for name, qs in (("text (50 commonest words)", text_q), ("text+facets", with_facets), ("facets only", facet_q)):
        lat, _ = await time_search(backend, qs)
        print(f"{name:<28} p50 {pct(lat, 50):7.1f} ms   p95 {pct(lat, 95):7.1f} ms")
    with scanned_facets():  # the same browse with its facets counted by the scan (before migration 0008)
        lat, _ = await time_search(backend, facet_q)
    print(f"{'facets only (scan, before)':<28} p50 {pct(lat, 50):7.1f} ms   p95 {pct(lat, 95):7.1f} ms")
    rare_q = [SearchQuery(viewer_id=viewer(i), q=random.Random(i).choice(words[50:2000]), facets=False)
              for i in range(queries)]  # ranks 50-2000 of the Zipf vocabulary
    lat, _ = await time_search(backend, rare_q)
    print(f"{'text (less common words)':<28} p50 {pct(lat, 50):7.1f} ms   p95 {pct(lat, 95):7.1f} ms")
    # "Similar to" as the API runs it: the asset itself left out, facets and total of every match.
    similar = [SearchQuery(viewer_id=viewer(i), vector=qvecs[i].tolist(), vector_model=SPACE, size=20,
                           exclude_ids=[2 * i + 1]) for i in range(queries)]
    lat, _ = await time_search(backend, similar)
    print(f"{'kNN similar-to + facets':<28} p50 {pct(lat, 50):7.1f} ms   p95 {pct(lat, 95):7.1f} ms")
    with scanned_facets():
        lat, _ = await time_search(backend, similar)
    print(f"{'kNN similar (scan, before)':<28} p50 {pct(lat, 50):7.1f} ms   p95 {pct(lat, 95):7.1f} ms")
    kinds = {
        "kNN (admin, no filter)": lambda i, v: SearchQuery(viewer_id=1, is_admin=True, vector=v,
                                                           vector_model=SPACE, size=10, facets=False),
        "kNN + visibility filter": lambda i, v: SearchQuery(viewer_id=viewer(i), vector=v, vector_model=SPACE,
                                                            size=10, facets=False),
        "kNN + visibility + object": lambda i, v: SearchQuery(viewer_id=viewer(i), vector=v, vector_model=SPACE,
                                                              size=10, objects=[OBJECTS[i % 10]], facets=False),
    }
    for label, make in kinds.items():
        qs = [make(i, qvecs[i].tolist()) for i in range(queries)]
        truth, exact_lat = [], []
        for q in qs:
            ids, seconds = await exact(db, q, space)
            truth.append(ids)
            exact_lat.append(seconds)
        for ef in ef_values:
            backend = PostgresSearch(db.sessions, ef_search=ef)
            lat, got = await time_search(backend, qs)
            recall = statistics.mean(len(set(g) & set(t)) / max(1, len(t)) for g, t in zip(got, truth, strict=True))
            print(f"{label:<28} ef_search={ef:<4} p50 {pct(lat, 50):6.1f} ms  p95 {pct(lat, 95):6.1f} ms | exact "
                  f"p50 {pct(exact_lat, 50):6.1f} ms  p95 {pct(exact_lat, 95):6.1f} ms | speed-up x"
                  f"{pct(exact_lat, 95) / pct(lat, 95):.1f} (p95) | recall@10 {recall:.3f}")
    if explain:
        await explain_plans(db, backend, {
            "browse with facets (kept counts)": facet_q[0], "text search with facets": with_facets[0],
            "kNN similar-to with facets (kept counts)": similar[0],
            "kNN + visibility filter": kinds["kNN + visibility filter"](0, qvecs[0].tolist())})
    await db.close()
    stop_embedded_postgres()
    shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def scanned_facets():
    """Facets counted by scanning the visible documents, as every search did before the kept counts."""
    serves = facet_counts.serves
    facet_counts.serves = lambda query: False
    try:
        yield
    finally:
        facet_counts.serves = serves


async def explain_plans(db: Database, backend: PostgresSearch, queries: dict[str, SearchQuery]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement the backend runs for each query, as it runs them."""
    for label, query in queries.items():
        statements: list[tuple[str, object]] = []

        def capture(conn, cursor, statement, parameters, context, executemany, into=statements):
            into.append((statement, parameters))

        event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
        try:
            await backend.search(query)
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
        print(f"\n--- plans: {label}")
        async with db.engine.connect() as conn:  # one transaction: the backend's SET LOCALs apply as they did
            for statement, parameters in statements:
                if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    await conn.exec_driver_sql(statement, parameters)
                    continue
                plan = (await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)).all()
                print(" ".join(statement.split())[:160])
                print("\n".join("    " + row[0] for row in plan))


# ---------------------------------------------------------------------------------------------- ingest

def ingest_bench(count: int) -> None:
    import httpx
    from PIL import Image

    from tests.dam.annotation_server import InProcessAnnotation
    from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam, wait_until
    from tests.support.test_models import write_test_repository

    tmp = Path(tempfile.mkdtemp(prefix="maam-bench-ingest-"))
    rng = np.random.default_rng(1)

    def image(i: int) -> bytes:
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(out, "JPEG", quality=90)
        return out.getvalue() + i.to_bytes(4, "big")  # trailing bytes keep every file distinct

    files = [image(i) for i in range(2 * count)]
    started = time.perf_counter()
    for data in files:
        (tmp / hashlib.sha256(data).hexdigest()).write_bytes(data)
    baseline = len(files) / (time.perf_counter() - started)

    annotation = InProcessAnnotation(write_test_repository(tmp / "models"), free_port())
    port = free_port()
    env = child_env(MAAM_DATA_DIR=str(tmp / "data"), MAAM_ANNOTATION__PORT=str(annotation.port),
                    MAAM_MODEL_REPOSITORY=str(annotation.repository), MAAM_DAM__WORKERS="4",
                    MAAM_DAM__RETRY_BASE_S="0.2",
                    MAAM_DAM__RETRY_MAX_S="1")
    env.pop("MAAM_DAM__DATABASE_URL", None)
    dam = ServiceProcess(maam("serve", "dam", "--port", str(port)), env=env)
    base = f"http://127.0.0.1:{port}"

    healthy = http_healthy(base)

    try:
        dam.wait_ready(healthy, 120, "the DAM")
        client = httpx.Client(base_url=base, timeout=60)
        client.post("/api/auth/register", json={"email": "bench@example.org", "password": "bench password"})
        token = client.post("/api/auth/login", data={"username": "bench@example.org",
                                                     "password": "bench password"}).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"

        def upload_all(batch: list[bytes]) -> list[int]:
            def one(data: bytes) -> int:
                reply = client.post("/api/assets", files={"file": ("x.jpg", data)})
                reply.raise_for_status()
                return int(reply.json()["id"])

            with ThreadPoolExecutor(4) as pool:
                return list(pool.map(one, batch))

        def done_count() -> int:
            """Assets whose annotation finished (a stream still running leaves them pending/running)."""
            pages = range(1, 2 + (2 * count) // 100)
            return sum(1 for page in pages
                       for a in client.get("/api/assets", params={"size": 100, "page": page}).json()["items"]
                       if a["annotation_state"] in ("done", "failed"))

        def counters() -> dict[str, float]:
            """Search documents written (per cause) and model results stored, from the DAM's /metrics."""
            out: dict[str, float] = {}
            for line in client.get("/metrics").text.splitlines():
                for name in ("maam_dam_search_docs_written_total", "maam_dam_annotation_results_total"):
                    if line.startswith(name + "{"):
                        key = name if name.endswith("results_total") else line.split('cause="')[1].split('"')[0]
                        out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
            return out

        started = time.perf_counter()
        upload_all(files[:count])  # annotation service down: store + outbox only
        excluded = count / (time.perf_counter() - started)
        annotation.start()
        wait_until(lambda: done_count() >= count, 600, interval=0.2, what="backlog annotated")
        started = time.perf_counter()
        upload_all(files[count:])
        wait_until(lambda: done_count() >= 2 * count, 600, interval=0.2, what="annotation")
        included = count / (time.perf_counter() - started)
        written = counters()
        results = written.get("maam_dam_annotation_results_total", 0.0) / (2 * count)
        print(f"\n== search documents per annotated asset ({2 * count} assets): built for annotation results "
              f"{written.get('annotation', 0.0) / (2 * count):.2f}, for requests (upload) "
              f"{written.get('change', 0.0) / (2 * count):.2f}; model results per asset {results:.1f} "
              f"(one full build per result plus two, as before this indexer: {results + 2:.1f})")
        print(f"\n== ingest, {count} JPEGs of 64x64 per phase, 4 concurrent HTTP clients")
        print(f"baseline: sha256 + write to disk      {baseline:8.1f} assets/s")
        print(f"upload, annotation excluded          {excluded:8.1f} assets/s"
              f"   (x{excluded / baseline:.3f} of baseline)")
        print(f"upload + annotation (all test models) {included:7.1f} assets/s"
              f"   (x{included / baseline:.3f} of baseline)")
    finally:
        dam.stop()  # stops its embedded PostgreSQL too
        annotation.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k assets only")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 100, 200])
    parser.add_argument("--ingest", type=int, default=100, help="assets per ingest phase (0 = skip)")
    parser.add_argument("--sizes", type=int, nargs="+", help="override the collection sizes")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the search statements")
    args = parser.parse_args()
    if args.ingest:
        ingest_bench(args.ingest)
    for n in args.sizes or ([10_000] if args.quick else [10_000, 100_000]):
        asyncio.run(search_bench(n, args.dim, args.queries, args.ef_search, explain=args.explain))


if __name__ == "__main__":
    main()
