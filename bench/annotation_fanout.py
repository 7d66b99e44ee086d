"""Annotation fan-out overhead: images/s through the gRPC service (`maam serve annotation` in its
own process, ImageAnnotation with N concurrent clients) against calling the same adapters
directly in this process (decode + every unit of the fan-out, N concurrent workers), for the same
models and images. Goal: service within 1.15x of direct at 8 concurrent clients.

    .venv/bin/python bench/annotation_fanout.py [--quick] [--clients 8] [--repository DIR]

Without --repository the tiny test models are written to a temp directory (fast models make the
service's own overhead most visible, so this is the harsh case)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.catalog import ModelCatalog
from services.annotation.image_tasks import image_units
from services.annotation.server import SERVICE_NAME, wait_backend
from services.common.inference import create_backend
from services.common.media import decode_image
from services.common.model_repository import ModelRepository
from services.common.settings import Settings
from tests.support.media import encode_image
from tests.support.processes import ServiceProcess, child_env, free_port, maam
from tests.support.test_models import write_test_repository


def images(count: int, side: int) -> list[bytes]:
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    out = []
    for i in range(count):
        image = Image.fromarray(photos[i % len(photos)])
        image.thumbnail((side, side))
        out.append(encode_image(np.asarray(image.convert("RGB"))))
    return out


async def run_workers(items: list[bytes], clients: int, work) -> float:
    """Images per second for `clients` workers draining the same list."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return len(items) / (time.perf_counter() - start)


async def compare(
    settings: Settings, port: int, items: list[bytes], clients: int, rounds: int
) -> tuple[float, float, int, int]:
    """Alternates direct and service rounds (the machine is shared: interleaving spreads the
    noise over both) and keeps each side's best round."""
    backend = create_backend(settings, ModelRepository(settings.model_repository))
    await wait_backend(backend)
    units = image_units(ModelCatalog(ModelRepository(settings.model_repository), backend))
    counts: list[int] = []

    async def direct(data: bytes) -> None:
        rgb = await asyncio.to_thread(decode_image, data)
        await asyncio.gather(*(unit.run(rgb) for unit in units))

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MediaAnnotationServerStub(channel)

        async def service(data: bytes) -> None:
            reply = await stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=data))
            if reply.status or reply.model_errors:
                raise RuntimeError(f"annotation failed: {reply.error_msg or reply.model_errors}")
            counts.append(len(reply.valid_models))

        warmup = items[:clients]
        await run_workers(warmup, clients, direct)
        await run_workers(warmup, clients, service)
        best_direct = best_service = 0.0
        for _ in range(rounds):
            best_direct = max(best_direct, await run_workers(items, clients, direct))
            best_service = max(best_service, await run_workers(items, clients, service))
    await backend.close()
    return best_direct, best_service, len(units), counts[-1]


def wait_serving(port: int) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few images, for a smoke run")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--images", type=int, default=64, help="images per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--side", type=int, default=256, help="longer side of the test images")
    parser.add_argument("--repository", type=Path, help="model repository (default: the test models)")
    args = parser.parse_args()
    count, rounds = (16, 2) if args.quick else (args.images, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        repository = args.repository or write_test_repository(Path(tmp) / "models")
        workers = "2"
        settings = Settings(model_repository=repository, onnx_workers=int(workers))
        items = images(count, args.side)
        port = free_port()
        env = child_env(MAAM_MODEL_REPOSITORY=str(repository), MAAM_ONNX_WORKERS=workers, MAAM_DATA_DIR=tmp)
        server = ServiceProcess(maam("serve", "annotation", "--port", str(port)), env=env)
        try:
            server.wait_ready(lambda: wait_serving(port), timeout=120, what="annotation service")
            direct_rate, service_rate, direct_units, service_units = asyncio.run(
                compare(settings, port, items, args.clients, rounds)
            )
        finally:
            server.stop()

    ratio = direct_rate / service_rate
    print(f"models per image: direct {direct_units}, service {service_units}")
    print(f"direct (in process):  {direct_rate:8.1f} images/s")
    print(f"service (gRPC):       {service_rate:8.1f} images/s")
    print(f"overhead ratio at {args.clients} concurrent clients: {ratio:.2f}x (goal <= 1.15x)")


if __name__ == "__main__":
    main()
