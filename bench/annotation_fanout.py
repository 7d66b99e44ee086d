"""Annotation fan-out overhead: images/s through the gRPC service (ImageAnnotation over a real
gRPC channel, N concurrent clients) against calling the same adapters directly in this process
(decode + every unit of the fan-out, N concurrent workers), for the same models and images.
Goal: service within 1.15x of direct at 8 concurrent clients (issue 21: 1.05x on the real models, batched
and unbatched: `--batch 8` sends ImageAnnotationStreamBatch calls of 8 images, the direct side runs 8 at once).

The server runs in this process on the same backend (same ONNX sessions, with the metrics and
request-id interceptors it has in production), so the ratio is the cost of gRPC + controller
alone. Its clients run in a process of their own, as real clients do: in this process they would
also charge their own half of every gRPC call to the server's interpreter lock. That harsher
variant is measured too (`--clients` in-process row) and printed beside it.
`--server process` starts `maam serve annotation` as its own process instead (on a shared 2-core
machine that mostly measures the scheduler).

    .venv/bin/python bench/annotation_fanout.py [--quick] [--clients 8] [--batch 8] [--server process]
        [--repository DIR]

Without --repository the tiny test models are written to a temp directory (fast models make the
service's own overhead most visible, so this is the harsh case)."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import grpc
import numpy as np
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.catalog import ModelCatalog
from services.annotation.server import SERVICE_NAME, build_annotation_server, wait_backend
from services.annotation.tasks import Image, Media
from services.common.inference import create_backend
from services.common.media import decode_image
from services.common.metrics import ServiceMetrics
from services.common.model_repository import ModelRepository
from services.common.native_threads import limit_native_threads
from services.common.settings import InferenceSettings, Settings
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


async def run_workers(items: list[bytes], clients: int, work, batch: int = 1) -> float:
    """Images per second for `clients` workers draining the same list, `batch` images per call."""
    queue: asyncio.Queue[list[bytes]] = asyncio.Queue()
    for start in range(0, len(items), batch):
        queue.put_nowait(items[start:start + batch])

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return len(items) / (time.perf_counter() - start)


def annotate_over_grpc(stub: pb_grpc.MediaAnnotationServerStub, counts: list[int]):
    """One ImageAnnotation per image; a group of several goes as one ImageAnnotationStreamBatch call (the
    DAM's batched workers), whose messages are counted per image."""

    async def service(group: list[bytes]) -> None:
        if len(group) == 1:
            reply = await stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=group[0]))
            if reply.status or reply.model_errors:
                raise RuntimeError(f"annotation failed: {reply.error_msg or reply.model_errors}")
            counts.append(len(reply.valid_models))
            return
        request = pb.ImageAnnotationRequestBatch(requests=[pb.ImageAnnotationRequest(image_data=d) for d in group])
        results = [0] * len(group)
        async for message in stub.ImageAnnotationStreamBatch(request):
            if message.status or message.response.WhichOneof("response") == "model_error":
                raise RuntimeError(f"annotation failed: {message.error_msg or message.response}")
            results[message.index] += 1
        counts.append(min(results))

    return service


def client_process(port: int, conn: Connection) -> None:
    """The clients of the own-process rows: each message (images, clients) is answered with
    (images/s, models per image); None ends the process."""

    async def serve_rounds() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            counts: list[int] = []
            work = annotate_over_grpc(pb_grpc.MediaAnnotationServerStub(channel), counts)
            while (message := conn.recv()) is not None:
                items, clients, batch = message
                conn.send((await run_workers(items, clients, work, batch), counts[-1]))

    asyncio.run(serve_rounds())


class RemoteClients:
    """N concurrent gRPC clients in a process of their own."""

    def __init__(self, port: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=client_process, args=(port, child), daemon=True)
        self.process.start()
        self.models = 0

    async def run(self, items: list[bytes], clients: int, batch: int = 1) -> float:
        self.conn.send((items, clients, batch))
        rate, self.models = await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
        return rate

    def close(self) -> None:
        self.conn.send(None)
        self.process.join(30)


async def compare(
    settings: Settings, port: int | None, items: list[bytes], clients: int, rounds: int, batch: int = 1
) -> dict[str, float | int]:
    """Alternates direct and service rounds (the machine is shared: interleaving spreads the noise
    over all of them). Returns each side's best round and the median of the per-round ratios.
    port None = serve in this process."""
    backend = create_backend(settings, ModelRepository(settings.model_repository))
    server = None
    if port is None:
        metrics = ServiceMetrics("annotation", CollectorRegistry())
        server, port, _, _ = await build_annotation_server(settings, "127.0.0.1:0", backend, metrics=metrics)
        await server.start()
    await wait_backend(backend)
    units = ModelCatalog(ModelRepository(settings.model_repository), backend).units(Media.IMAGE)
    counts: list[int] = []

    async def direct_one(data: bytes) -> None:
        rgb = await asyncio.to_thread(decode_image, data)
        await asyncio.gather(*(unit.run(Image(rgb)) for unit in units))

    async def direct(group: list[bytes]) -> None:  # a group's images at once, as the service runs a batch
        await asyncio.gather(*(direct_one(data) for data in group))

    remote = RemoteClients(port)
    sides = ("direct", "service", "service_in_process")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        in_process = annotate_over_grpc(pb_grpc.MediaAnnotationServerStub(channel), counts)
        runs = {
            "direct": lambda images: run_workers(images, clients, direct, batch),
            "service": lambda images: remote.run(images, clients, batch),
            "service_in_process": lambda images: run_workers(images, clients, in_process, batch),
        }
        for side in sides:
            await runs[side](items[:clients * batch])  # warm-up
        rates: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(rounds):
            for side in sides:
                rates[side].append(await runs[side](items))
            print("  round: " + "  ".join(f"{k} {v[-1]:6.1f}/s" for k, v in rates.items()), flush=True)
    remote.close()
    if server is not None:
        await server.stop(None)
    await backend.close()
    best = {side: max(rates[side]) for side in sides}
    medians = {
        f"{side}_ratio": statistics.median(d / r for d, r in zip(rates["direct"], rates[side], strict=True))
        for side in sides[1:]
    }
    return {**best, **medians, "direct_units": len(units), "service_units": remote.models,
            "in_process_units": counts[-1]}


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
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--side", type=int, default=256, help="longer side of the test images")
    parser.add_argument("--server", choices=("inprocess", "process"), default="inprocess")
    parser.add_argument("--repository", type=Path, help="model repository (default: the test models)")
    parser.add_argument("--batch", type=int, default=1,
                        help="images per call: >1 sends ImageAnnotationStreamBatch (direct: that many at once)")
    args = parser.parse_args()
    count, rounds = (16, 3) if args.quick else (args.images, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        repository = args.repository or write_test_repository(Path(tmp) / "models")
        workers = "2"
        settings = Settings(model_repository=repository, inference=InferenceSettings(onnx_workers=int(workers)))
        limit_native_threads(settings)  # as `maam serve annotation` does; direct runs under it too
        items = images(count, args.side)
        if args.server == "inprocess":
            result = asyncio.run(compare(settings, None, items, args.clients, rounds, args.batch))
        else:
            port = free_port()
            env = child_env(MAAM_MODEL_REPOSITORY=str(repository), MAAM_INFERENCE__ONNX_WORKERS=workers,
                            MAAM_DATA_DIR=tmp)
            server = ServiceProcess(maam("serve", "annotation", "--port", str(port)), env=env)
            try:
                server.wait_ready(lambda: wait_serving(port), timeout=120, what="annotation service")
                result = asyncio.run(compare(settings, port, items, args.clients, rounds, args.batch))
            finally:
                server.stop()

    direct = result["direct"]
    print(f"models per image: direct {result['direct_units']}, service {result['service_units']} "
          f"(in-process clients {result['in_process_units']})")
    print(f"direct (in process):                      {direct:8.1f} images/s")
    print(f"service (gRPC, {args.server} server), clients in their own process: {result['service']:8.1f} images/s")
    print(f"service (gRPC, {args.server} server), clients in this process:      "
          f"{result['service_in_process']:8.1f} images/s")
    calls = "ImageAnnotation" if args.batch == 1 else f"ImageAnnotationStreamBatch of {args.batch}"
    print(f"overhead ratio at {args.clients} concurrent clients, {calls} "
          f"(median of {rounds} paired rounds; best vs best):")
    print(f"  clients in a process of their own: {result['service_ratio']:.2f}x  "
          f"({direct / result['service']:.2f}x)   goal <= 1.15x")
    where = "the server's process" if args.server == "inprocess" else "the bench process"
    print(f"  clients in {where}: {result['service_in_process_ratio']:.2f}x  "
          f"({direct / result['service_in_process']:.2f}x)")

if __name__ == "__main__":
    main()
