"""`maam serve annotation` operations: the request id comes back in trailing metadata, the Prometheus
exporter port counts and times calls and model inferences, logs are JSON lines, and on SIGTERM health
turns NOT_SERVING while a call in flight (its image fetch held open) still completes."""

from __future__ import annotations

import http.server
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.server import SERVICE_NAME
from tests.support.operations import check_json_logs, metric_value, scrape
from tests.support.processes import ServiceProcess, child_env, free_port, maam, wait_until

METHOD = "/" + SERVICE_NAME + "/ImageAnnotation"


class HeldImageServer:
    """Serves one image over HTTP, each answer held until `release()`; `asked` is set on a request."""

    def __init__(self, body: bytes) -> None:
        self.asked = threading.Event()
        self.gate = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.asked.set()
                outer.gate.wait(60)
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/held.jpg"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held_image(jpeg: bytes) -> Iterator[HeldImageServer]:
    server = HeldImageServer(jpeg)
    yield server
    server.close()


def _serving(channel: grpc.Channel) -> bool:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME),
                                                          timeout=2)
    except grpc.RpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def test_metrics_request_ids_json_logs_and_graceful_sigterm(
    test_repository: Path, jpeg: bytes, tmp_path: Path, held_image: HeldImageServer
) -> None:
    port, metrics_port = free_port(), free_port()
    env = child_env(MAAM_MODEL_REPOSITORY=str(test_repository), MAAM_DATA_DIR=str(tmp_path),
                    MAAM_INFERENCE__ONNX_WORKERS="1",
                    MAAM_ANNOTATION__METRICS_PORT=str(metrics_port), MAAM_MEDIA__ALLOW_PRIVATE_URLS="true")
    process = ServiceProcess(maam("serve", "annotation", "--port", str(port)), env=env)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            process.wait_ready(lambda: _serving(channel), timeout=120, what="annotation service")
            stub = pb_grpc.MediaAnnotationServerStub(channel)
            before = scrape(metrics_url)
            request = pb.ImageAnnotationRequest(image_data=jpeg, models=["test_detector"])
            reply, call = stub.ImageAnnotation.with_call(request, timeout=60,
                                                         metadata=(("x-request-id", "ops-annotation-1"),))
            assert reply.status == 0 and list(reply.valid_models) == ["test_detector"]
            assert ("x-request-id", "ops-annotation-1") in tuple(call.trailing_metadata())
            _, minted = stub.ImageAnnotation.with_call(request, timeout=60)
            minted_id = dict(minted.trailing_metadata())["x-request-id"]
            assert len(minted_id) == 32 and minted_id != "ops-annotation-1"

            after = scrape(metrics_url)
            ok = {"method": METHOD, "type": "unary_unary", "code": "OK"}
            assert metric_value(after, "maam_grpc_requests_total", ok) == metric_value(
                before, "maam_grpc_requests_total", ok) + 2
            timed = {"method": METHOD}
            assert metric_value(after, "maam_grpc_request_duration_seconds_count", timed) == metric_value(
                before, "maam_grpc_request_duration_seconds_count", timed) + 2
            inference = {"model": "test_detector", "backend": "onnx"}
            assert metric_value(after, "maam_model_inference_seconds_count", inference) >= 2
            assert "maam_queue_depth" in after and metric_value(after, "maam_queue_depth",
                                                                {"queue": "annotation_batch"}) == 0
            assert metric_value(after, "maam_service_info", {"service": "annotation"}) == 1

            # A call in flight (its image URL answers only when released), a health watch, then SIGTERM.
            held = stub.ImageAnnotation.future(pb.ImageAnnotationRequest(image_url=held_image.url,
                                                                         models=["test_detector"]), timeout=60,
                                                 metadata=(("x-request-id", "held-fetch"),))
            assert held_image.asked.wait(30), "the service never fetched the held image"
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME),
                                                              timeout=30)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            process.proc.send_signal(signal.SIGTERM)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()  # a stream would otherwise hold the stop for the whole grace period
            assert process.alive() and not held.done()
            held_image.release()
            answer = held.result(timeout=60)
            assert answer.status == 0 and list(answer.valid_models) == ["test_detector"]
            process.proc.wait(30)
    finally:
        code = process.stop()
    assert code == 0, process.output[-3000:]
    assert "annotation service stopped" in process.output  # the graceful path ran to the end
    # What the service logged while serving the held call (its fetch of the URL) carries the call's id.
    check_json_logs(process.output, "annotation", "held-fetch")
    wait_until(lambda: _refused(metrics_url), 5, interval=0.05, what="the metrics port to close")


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return True
    return False


def _port_pair() -> tuple[int, int]:
    """A free gRPC port whose metrics port (the gRPC port + 1000, the default) is free too."""
    for _ in range(50):
        port = free_port()
        if port + 1000 <= 65535:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 1000))
                except OSError:
                    continue
            return port, port + 1000
    raise RuntimeError("no free port pair")


def test_two_instances_on_one_machine_each_serve_their_own_metrics(test_repository: Path, tmp_path: Path) -> None:
    """The metrics port follows the gRPC port unless set: two services started alike never collide (both
    used to bind 9464, so the second one could not start)."""
    servers: list[tuple[ServiceProcess, int, int]] = []
    try:
        for index in range(2):
            port, metrics_port = _port_pair()
            env = child_env(MAAM_MODEL_REPOSITORY=str(test_repository), MAAM_DATA_DIR=str(tmp_path / str(index)),
                            MAAM_INFERENCE__ONNX_WORKERS="1")
            env.pop("MAAM_ANNOTATION__METRICS_PORT")  # child_env turns it off for the other tests
            servers.append((ServiceProcess(maam("serve", "annotation", "--port", str(port)), env=env), port,
                            metrics_port))
        for process, port, metrics_port in servers:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                process.wait_ready(lambda ch=channel: _serving(ch), timeout=120, what=f"annotation on {port}")
            assert metric_value(scrape(f"http://127.0.0.1:{metrics_port}/metrics"), "maam_service_info",
                                {"service": "annotation"}) == 1
        assert all(process.alive() for process, _, _ in servers)
    finally:
        for process, _, _ in servers:
            process.stop()
