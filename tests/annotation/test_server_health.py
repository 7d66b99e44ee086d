"""The annotation server answers gRPC health checks and lists its services by reflection."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.annotation.server import SERVICE_NAME, build_server
from services.common.settings import Settings


async def test_health_and_reflection() -> None:
    server, port, health_servicer = await build_server(Settings(), address="127.0.0.1:0")
    await server.start()
    try:
        await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            services = set()
            async for response in reflection.ServerReflectionInfo(iter([request])):
                services |= {s.name for s in response.list_services_response.service}
            assert {SERVICE_NAME, "grpc.health.v1.Health"} <= services
    finally:
        await server.stop(None)
