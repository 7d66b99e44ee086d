"""Whole-path ingest: N real photos (scikit-image's photos and edits of them) uploaded over HTTP to a real
DAM process, until every one is annotated by every installed model of a real annotation service process and
searchable, against that same annotation service's own throughput on the same images and models, measured in
the same run (ImageAnnotationStream over gRPC, as many concurrent clients as the DAM has workers).
Goal: DAM ingest >= 0.8x of the service's own throughput on the real models.

Two model sets, each its own pair of processes:
- `real`: the installed packaged models (`maam models install-shipped` fills triton_models/);
- `test`: the tiny test models, where the DAM's fixed per-asset costs (upload, thumbnail, outbox, search
  documents) show.

Each DAM run is made once per `--batch` value (MAAM_DAM__ANNOTATION_BATCH; 1 = one stream per asset, as
before batching). The service figure is measured before and after the DAM runs; the ratio uses their
mean (the machine is shared: bracketing spreads the noise).

    python bench/ingest.py [--images 48] [--models real test] [--workers 4] [--repository triton_models]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "hubble_deep_field",
          "immunohistochemistry", "page", "text", "moon", "brick", "grass", "gravel", "colorwheel")
EDITS = ("as is", "mirrored", "cropped", "rotated", "brighter", "grey", "smaller", "recompressed")


def photos(count: int, max_side: int = 640) -> list[bytes]:
    """Distinct JPEGs: each scikit-image photo, then each edit of each photo, until `count`."""
    from PIL import Image, ImageEnhance, ImageOps
    from skimage import data

    bases = []
    for name in PHOTOS:
        try:
            array = getattr(data, name)()
        except Exception:  # a photo this scikit-image does not bundle
            continue
        image = Image.fromarray(array).convert("RGB")
        image.thumbnail((max_side, max_side))
        bases.append(image)
    out: list[bytes] = []
    for round_ in range(count // (len(bases) * len(EDITS)) + 1):
        for edit in EDITS:
            for base in bases:
                if len(out) == count:
                    return out
                image, quality = base, 90 - round_
                if edit == "mirrored":
                    image = ImageOps.mirror(base)
                elif edit == "cropped":
                    w, h = base.size
                    image = base.crop((w // 10, h // 10, w - w // 10, h - h // 10))
                elif edit == "rotated":
                    image = base.rotate(90, expand=True)
                elif edit == "brighter":
                    image = ImageEnhance.Brightness(base).enhance(1.25)
                elif edit == "grey":
                    image = ImageOps.grayscale(base).convert("RGB")
                elif edit == "smaller":
                    image = base.resize((base.width * 3 // 4, base.height * 3 // 4))
                elif edit == "recompressed":
                    quality = 60 - round_
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=quality)
                if buffer.getvalue() not in out:  # the DAM stores equal bytes once
                    out.append(buffer.getvalue())
    return out


# ---------------------------------------------------------------------------------------------- service alone

async def service_rate(port: int, items: list[bytes], clients: int) -> tuple[float, int]:
    """Images/s through ImageAnnotationStream with `clients` concurrent streams; and results per image."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    results = 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[
            ("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]) as channel:
        stub = pb_grpc.MediaAnnotationServerStub(channel)

        async def worker() -> None:
            nonlocal results
            while not queue.empty():
                data = queue.get_nowait()
                async for message in stub.ImageAnnotationStream(pb.ImageAnnotationRequest(image_data=data)):
                    if message.WhichOneof("response") == "model_error":
                        raise RuntimeError(f"annotation failed: {message.model_error}")
                    results += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return len(items) / (time.perf_counter() - started), results // max(1, len(items))


# ---------------------------------------------------------------------------------------------- whole path

def dam_rate(annotation_port: int, repository: Path, items: list[bytes], workers: int, tmp: Path,
             uploaders: int, batch: int) -> tuple[float, float, int]:
    """(assets/s upload -> annotated -> searchable, upload-only assets/s, searchable count)."""
    import httpx

    from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam, wait_until

    port = free_port()
    env = child_env(MAAM_DATA_DIR=str(tmp / "data"), MAAM_ANNOTATION__PORT=str(annotation_port),
                    MAAM_MODEL_REPOSITORY=str(repository), MAAM_DAM__WORKERS=str(workers),
                    MAAM_DAM__ANNOTATION_BATCH=str(batch), MAAM_DAM__RETRY_BASE_S="0.2", MAAM_DAM__RETRY_MAX_S="1")
    env.pop("MAAM_DAM__DATABASE_URL", None)
    dam = ServiceProcess(maam("serve", "dam", "--port", str(port)), env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        dam.wait_ready(http_healthy(base), 120, "the DAM")
        client = httpx.Client(base_url=base, timeout=120)
        client.post("/api/auth/register", json={"email": "bench@example.org", "password": "bench password"})
        token = client.post("/api/auth/login", data={"username": "bench@example.org",
                                                     "password": "bench password"}).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"

        def one(pair: tuple[int, bytes]) -> int:
            reply = client.post("/api/assets", files={"file": (f"photo{pair[0]}.jpg", pair[1], "image/jpeg")})
            reply.raise_for_status()
            return int(reply.json()["id"])

        def finished() -> int:
            pages = range(1, 2 + len(items) // 100)
            states = [a["annotation_state"] for page in pages
                      for a in client.get("/api/assets", params={"size": 100, "page": page}).json()["items"]]
            if "failed" in states:
                raise RuntimeError("an asset's annotation failed; see the DAM's log")
            return states.count("done")

        started = time.perf_counter()
        with ThreadPoolExecutor(uploaders) as pool:
            ids = set(pool.map(one, enumerate(items)))
        uploaded = time.perf_counter() - started
        if len(ids) != len(items):
            raise RuntimeError(f"{len(items)} uploads made {len(ids)} assets")
        wait_until(lambda: finished() >= len(items), 900, interval=0.2, what="every asset annotated")
        elapsed = time.perf_counter() - started
        # `done` means searchable (the worker writes the search document before it records done): check it.
        found = client.get("/api/search", params={"size": 1}).json()["total"]
        return len(items) / elapsed, len(items) / uploaded, int(found)
    finally:
        dam.stop()  # stops its embedded PostgreSQL too


def measure(label: str, repository: Path, items: list[bytes], workers: int, uploaders: int,
            batches: list[int]) -> None:
    from tests.dam.annotation_server import AnnotationProcess
    from tests.support.processes import free_port

    annotation = AnnotationProcess(repository, free_port())
    annotation.start()
    runs: dict[int, tuple[float, float, int]] = {}
    try:
        asyncio.run(service_rate(annotation.port, items[:workers], workers))  # warm-up: sessions, caches
        before, per_image = asyncio.run(service_rate(annotation.port, items, workers))
        for batch in batches:
            tmp = Path(tempfile.mkdtemp(prefix="maam-bench-ingest-"))
            try:
                runs[batch] = dam_rate(annotation.port, repository, items, workers, tmp, uploaders, batch)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        after, _ = asyncio.run(service_rate(annotation.port, items, workers))
    finally:
        annotation.stop()
    service = (before + after) / 2
    print(f"\n== {label}: {len(items)} photos, {per_image} model results per photo, DAM workers {workers}, "
          f"{uploaders} uploading clients (load average {os.getloadavg()[0]:.2f})")
    print(f"annotation service alone (ImageAnnotationStream x{workers}): {before:7.2f} / {after:7.2f} images/s "
          f"(before / after), mean {service:.2f}")
    for batch, (whole, upload_only, found) in runs.items():
        how = "one stream per asset (as before batching)" if batch == 1 else f"batches of up to {batch}"
        print(f"DAM, {how}: upload only {upload_only:6.2f} assets/s; upload -> annotated -> searchable "
              f"{whole:6.2f} assets/s ({found} searchable); ratio to the service alone {whole / service:.2f}x"
              f"   goal >= 0.8x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--models", nargs="+", choices=("real", "test"), default=["real", "test"])
    parser.add_argument("--workers", type=int, default=4, help="DAM annotation workers = service clients")
    parser.add_argument("--uploaders", type=int, default=4, help="concurrent HTTP upload clients")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8],
                        help="MAAM_DAM__ANNOTATION_BATCH values, one DAM run each (1 = one stream per asset)")
    parser.add_argument("--repository", type=Path, default=Path("triton_models"),
                        help="the installed packaged models (`maam models install-shipped`)")
    args = parser.parse_args()
    items = photos(args.images)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for models in args.models:
        if models == "real":
            installed = sorted(p.parent.parent.name for p in args.repository.resolve().glob("*/1/*") if p.is_file())
            if not installed:
                print(f"\n== real models: none installed in {args.repository}; run `maam models install-shipped`")
                continue
            print(f"\nreal models installed: {', '.join(sorted(set(installed)))}")
            measure("real models", args.repository.resolve(), items, args.workers, args.uploaders, args.batch)
        else:
            from tests.support.test_models import write_test_repository

            with tempfile.TemporaryDirectory() as tmp:
                measure("tiny test models", write_test_repository(Path(tmp) / "models"), items, args.workers,
                        args.uploaders, args.batch)


if __name__ == "__main__":
    main()
