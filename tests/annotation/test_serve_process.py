"""`maam serve annotation` as a real process: NOT_SERVING until the models are loaded, then
SERVING; it answers annotation calls at background CPU priority and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.server import SERVICE_NAME
from tests.support.processes import ServiceProcess, child_env, free_port, maam


def _serving(channel: grpc.Channel) -> bool:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=2
        )
    except grpc.RpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def test_serve_annotation_process(test_repository: Path, jpeg: bytes, tmp_path: Path) -> None:
    port = free_port()
    env = child_env(MAAM_MODEL_REPOSITORY=str(test_repository), MAAM_DATA_DIR=str(tmp_path),
                    MAAM_INFERENCE__ONNX_WORKERS="1")
    process = ServiceProcess(maam("serve", "annotation", "--port", str(port)), env=env)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            process.wait_ready(lambda: _serving(channel), timeout=120, what="annotation service")
            stub = pb_grpc.MediaAnnotationServerStub(channel)
            request = pb.ImageAnnotationRequest(image_data=jpeg, models=["test_detector"])
            reply = stub.ImageAnnotation(request, timeout=60)
            assert reply.status == 0 and list(reply.valid_models) == ["test_detector"]
            # Every thread, also the model runners started after start-up, at the default nice 10.
            tids = [int(t.name) for t in Path(f"/proc/{process.proc.pid}/task").iterdir()]
            assert len(tids) > 3 and {os.getpriority(os.PRIO_PROCESS, t) for t in tids} == {10}
    finally:
        code = process.stop()
    assert code == 0, process.output[-2000:]
    assert "annotation service listening" in process.output
