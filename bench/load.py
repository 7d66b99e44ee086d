"""DAM under load: C concurrent HTTP clients for S seconds, each looping over a mix of text search, browse,
kNN (similar_to) and upload, against a real DAM process whose annotation workers drain a backlog through a
real annotation service at the same time.

The collection: N synthetic assets written straight into the DAM's PostgreSQL (bench/dam.py's generator:
Zipf titles/tags/captions, objects, 512-d clustered vectors in the `bench_clip` space), half of them public,
plus a backlog of uploaded photos the annotation service works on during the run (every upload of the run
adds one more).

Baseline in the same run: the same request types from one client with the annotation backlog drained
(quiet p50); the loaded figures are printed beside it, with throughput, errors (non-2xx and exceptions, by
type and status) and the DAM process's resident memory before and after.
Goals (issue 21): p95 <= 250 ms text search and kNN, <= 400 ms upload at 20 clients on 10k assets.

    python bench/load.py [--assets 10000] [--clients 20] [--seconds 60] [--backlog 100] [--repository DIR]
    python bench/load.py --nice 0 10   # fair sharing: the same load with the annotation service at nice 0, then 10
    python bench/load.py --processes 2 # the DAM as MAAM_DAM__PROCESSES=2 (one server process per core here)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench.dam import SPACE, populate, vocabulary
from services.dam.core.config import DamOptions, DamSettings
from services.dam.core.db import Database, run_migrations, start_embedded_postgres, stop_embedded_postgres

KINDS = ("text", "browse", "knn", "upload")


async def seed(url: str, count: int) -> list[str]:
    """N assets with search documents and vectors; returns the commonest words (the text queries)."""
    rng = np.random.default_rng(0)
    words = vocabulary(rng)
    db = Database(url, DamSettings(dam=DamOptions(database_url=url)))
    await populate(db, count, 512, rng, words)
    async with db.engine.begin() as conn:
        # kNN by `similar_to` reads the asset's own vector; serial ids continue after the bulk-loaded rows.
        await conn.execute(text("INSERT INTO asset_vectors (asset_id, source, model, kind, embedding) "
                                f"SELECT asset_id, 'bench', '{SPACE}', 'image', embedding FROM search_vectors"))
        for table in ("assets", "users"):
            await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                    f"(SELECT max(id) FROM {table}))"))
    await db.close()
    return words[:50]


def jpeg(rng: random.Random) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    pixels = np.random.default_rng(rng.getrandbits(32)).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(out, "JPEG", quality=85)
    return out.getvalue()


def rss_mb(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


class Load:
    def __init__(self, base: str, token: str, words: list[str], assets: int) -> None:
        self.base, self.words, self.assets = base, words, assets
        self.headers = {"Authorization": f"Bearer {token}"}
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()

    async def request(self, client, kind: str, rng: random.Random) -> None:
        started = time.perf_counter()
        try:
            if kind == "text":
                reply = await client.get("/api/search", params={"q": rng.choice(self.words), "size": 20})
            elif kind == "browse":
                reply = await client.get("/api/search", params={"size": 20, "page": rng.randint(1, 20)})
            elif kind == "knn":  # odd ids are public (bench/dam.py)
                reply = await client.get("/api/search", params={
                    "similar_to": 2 * rng.randrange(self.assets // 2) + 2 - 1, "space": SPACE, "size": 20})
            else:
                reply = await client.post("/api/assets", files={"file": ("load.jpg", jpeg(rng), "image/jpeg")})
            if reply.status_code >= 300:
                self.errors[f"{kind} HTTP {reply.status_code}"] += 1
                return
        except Exception as exc:
            self.errors[f"{kind} {type(exc).__name__}"] += 1
            return
        self.latency[kind].append(time.perf_counter() - started)

    def latency_count(self, kind: str) -> int:
        return len(self.latency[kind])

    async def run(self, clients: int, seconds: float, kinds: tuple[str, ...] = KINDS) -> float:
        import httpx

        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=self.base, headers=self.headers, timeout=60,
                                     limits=httpx.Limits(max_connections=clients)) as client:
            async def loop(index: int) -> None:
                rng = random.Random(index)
                i = index
                while time.monotonic() < deadline:
                    await self.request(client, kinds[i % len(kinds)], rng)
                    i += 1

            started = time.perf_counter()
            await asyncio.gather(*(loop(i) for i in range(clients)))
            return time.perf_counter() - started


def renice(pid: int, nice: int) -> None:
    """Every thread of process `pid` (and so of what it starts later) to nice `nice`, never lower."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        tid = int(task.name)
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)


def loaded_phase(args: argparse.Namespace, dam, quiet: Load, token: str, words: list[str], pending,
                 nice: int | None) -> None:
    before_pending, memory_before = pending(), rss_mb(dam.proc.pid)
    memory_rounds = []
    for _ in range(args.rounds):
        load = Load(quiet.base, token, words, args.assets)
        elapsed = asyncio.run(load.run(args.clients, args.seconds))
        memory_rounds.append(rss_mb(dam.proc.pid))
    after_pending, memory_after = pending(), memory_rounds[-1]
    total = sum(len(v) for v in load.latency.values())
    priority = "as configured" if nice is None else f"nice {nice}"
    print(f"\n== {args.clients} clients x {elapsed:.0f} s on {args.assets:,} assets, annotation running "
          f"({'tiny test models' if args.repository is None else args.repository}, {args.workers} DAM workers in "
          f"{args.processes} DAM process{'es' if args.processes > 1 else ''}, "
          f"annotation service at {priority}); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"throughput {total / elapsed:.1f} requests/s ({total} answered, {sum(load.errors.values())} errors)")
    goals = {"text": 250, "knn": 250, "upload": 400}
    for kind in KINDS:
        lat = load.latency[kind]
        goal = f"   goal p95 <= {goals[kind]} ms" if kind in goals else ""
        print(f"{kind:<7} n={len(lat):5d}  p50 {pct(lat, 50):7.1f} ms  p95 {pct(lat, 95):7.1f} ms   "
              f"(quiet, 1 client: p50 {pct(quiet.latency[kind], 50):6.1f} ms; loaded p95 / quiet p50 "
              f"x{pct(lat, 95) / pct(quiet.latency[kind], 50):.1f}){goal}")
    print("errors: " + (", ".join(f"{k}: {v}" for k, v in sorted(load.errors.items())) or "none")
          + (f"; quiet phase: {dict(quiet.errors)}" if quiet.errors else ""))
    print(f"annotation backlog (jobs queued or running): {before_pending} before, {after_pending} after the run "
          f"({before_pending - after_pending + load.latency_count('upload')} annotated during it)")
    print(f"DAM memory (RSS, with its children): {memory_before:.0f} MiB before, {memory_after:.0f} MiB after",
          flush=True)
    if args.rounds > 1:
        print("DAM memory after each round (the figures above are the last round's): "
              + ", ".join(f"{m:.0f}" for m in memory_rounds) + " MiB", flush=True)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def main() -> None:
    import httpx

    from tests.dam.annotation_server import AnnotationProcess
    from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam, wait_until
    from tests.support.test_models import write_test_repository

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=1,
                        help="load phases one after the other, with the DAM's memory after each: growth that "
                             "stops after the first is warm-up (caches), growth every round a leak")
    parser.add_argument("--backlog", type=int, default=100, help="photos uploaded (to annotate) before the run")
    parser.add_argument("--workers", type=int, default=4, help="the DAM's annotation workers (in all processes)")
    parser.add_argument("--processes", type=int, default=1,
                        help="DAM server processes (MAAM_DAM__PROCESSES); the annotation workers are split among them")
    parser.add_argument("--repository", type=Path, help="annotation models (default: the tiny test models)")
    parser.add_argument("--nice", type=int, nargs="+", default=[None],
                        help="one loaded phase per value, the annotation service re-niced to it before the phase "
                             "(ascending: a process may only lower its own priority), e.g. --nice 0 10 to measure "
                             "fair sharing; default: one phase as MAAM_ANNOTATION__NICE configures it")
    args = parser.parse_args()
    if [n for n in args.nice if n is not None] != sorted(n for n in args.nice if n is not None):
        parser.error("--nice values must ascend (a process can only lower its own priority)")

    tmp = Path(tempfile.mkdtemp(prefix="maam-bench-load-"))
    url = start_embedded_postgres(tmp / "pg")
    run_migrations(url)
    started = time.perf_counter()
    words = asyncio.run(seed(url, args.assets))
    print(f"seeded {args.assets:,} assets in {time.perf_counter() - started:.0f} s")
    repository = args.repository or write_test_repository(tmp / "models")
    # Started at the lowest priority asked for, re-niced upwards between phases.
    first_nice = [n for n in args.nice if n is not None]
    annotation = AnnotationProcess(repository.resolve(), free_port(),
                                   **({"MAAM_ANNOTATION__NICE": str(min(first_nice))} if first_nice else {}))
    port = free_port()
    env = child_env(MAAM_DATA_DIR=str(tmp / "data"), MAAM_DAM__DATABASE_URL=url,
                    MAAM_ANNOTATION__PORT=str(annotation.port), MAAM_MODEL_REPOSITORY=str(repository.resolve()),
                    MAAM_DAM__WORKERS=str(max(1, args.workers // args.processes)),
                    MAAM_DAM__PROCESSES=str(args.processes))
    dam = ServiceProcess(maam("serve", "dam", "--port", str(port)), env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        annotation.start()
        dam.wait_ready(http_healthy(base), 120, "the DAM")
        client = httpx.Client(base_url=base, timeout=60)
        client.post("/api/auth/register", json={"email": "load@example.org", "password": "load password"})
        token = client.post("/api/auth/login", data={"username": "load@example.org",
                                                     "password": "load password"}).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"

        engine = create_engine(url, poolclass=NullPool)

        def pending() -> int:
            """Annotation jobs not finished yet (queued or running), straight from the outbox."""
            with engine.connect() as conn:
                return int(conn.execute(text(
                    "SELECT count(*) FROM annotation_jobs WHERE state IN ('queued', 'running')")).scalar_one())

        quiet = Load(base, token, words, args.assets)
        asyncio.run(quiet.run(1, 3))  # warm-up
        quiet = Load(base, token, words, args.assets)
        asyncio.run(quiet.run(1, min(20.0, args.seconds / 3)))
        rng = random.Random(99)
        for phase, nice in enumerate(args.nice):
            if nice is not None:  # re-niced upwards only: the bench needs no privilege
                renice(annotation.process.proc.pid, nice)
            # Each phase starts from the same backlog: top it up to --backlog pending jobs.
            for _ in range(max(0, args.backlog - pending()) if phase else args.backlog):
                client.post("/api/assets", files={"file": ("backlog.jpg", jpeg(rng), "image/jpeg")}
                            ).raise_for_status()
            loaded_phase(args, dam, quiet, token, words, pending, nice)
        started = time.perf_counter()
        wait_until(lambda: pending() == 0, 900, interval=1, what="the backlog drained")
        print(f"backlog drained {time.perf_counter() - started:.0f} s after the run")
    finally:
        dam.stop()
        annotation.stop()
        stop_embedded_postgres()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
