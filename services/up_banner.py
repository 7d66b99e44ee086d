"""`maam up`'s start-up banner: once the services answer, where to open them, that the first account is the
admin, and which capabilities are on (asked from the annotation service) with the command for each that is off."""

from __future__ import annotations

from collections.abc import Mapping

HTTP = ("dam", "ndd", "cmrr")


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def ready(host: str, ports: Mapping[str, int]) -> bool:
    """Every HTTP service answers /healthz and the annotation service says SERVING."""
    import grpc
    import httpx
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    for name in HTTP:
        if name in ports:
            try:
                if httpx.get(f"{_url(host, ports[name])}/healthz", timeout=1).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
    if "annotation" in ports:
        try:
            with grpc.insecure_channel(f"{_url(host, ports['annotation'])[7:]}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False
    return True


def capability_lines(host: str, port: int) -> list[str]:
    import grpc

    from protos import media_annotation_pb2 as pb
    from protos import media_annotation_pb2_grpc as pb_grpc

    try:
        with grpc.insecure_channel(_url(host, port)[7:]) as channel:
            reply = pb_grpc.MediaAnnotationServerStub(channel).ListCapabilities(pb.CapabilitiesRequest(), timeout=5)
    except grpc.RpcError as exc:
        return [f"  capabilities: unknown ({exc.code().name})"]
    on = sorted({f"{t.task.replace('_', ' ')} ({t.media})" for t in reply.tasks if t.available})
    off: dict[str, list[str]] = {}
    for t in reply.tasks:
        if not t.available:
            name = f"{t.task.replace('_', ' ')} ({t.media})"
            off.setdefault(t.enable_command or "no packaged model", []).append(name)
    lines = [f"  on:  {', '.join(on) or 'nothing'}"]
    lines += [f"  off: {', '.join(sorted(set(tasks)))} -> {command}" for command, tasks in sorted(off.items())]
    return lines


def banner(host: str, ports: Mapping[str, int], logs: str | None) -> str:
    lines = ["", "MAAM is up."]
    if "dam" in ports:
        dam = _url(host, ports["dam"])
        lines += [f"  web UI:      {dam}/   (the first account you create is the admin)",
                  f"  DAM API:     {dam}/docs"]
    for name, label in (("ndd", "NDD API:    "), ("cmrr", "CMRR API:   ")):
        if name in ports:
            lines.append(f"  {label} {_url(host, ports[name])}/docs")
    if "annotation" in ports:
        lines.append(f"  annotation:  {_url(host, ports['annotation'])[7:]} (gRPC)")
        lines.append("Capabilities (installed models):")
        lines += capability_lines(host, ports["annotation"])
    if logs:
        lines.append(f"Service logs: {logs}/<service>.log  (`maam up --json-console` prints them here instead)")
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)
