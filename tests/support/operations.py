"""Operations checks shared by the services' tests: scraping Prometheus metrics, reading JSON log lines,
and an HTTP request held open mid-body (a slow upload) so a test can signal the server meanwhile."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import ServiceProcess, wait_until


def metric_value(exposition: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when there is none)."""
    wanted = dict(labels or {})
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted.items()):
                total += sample.value
    return total


def scrape(url: str) -> str:
    reply = httpx.get(url, timeout=10)
    reply.raise_for_status()
    assert reply.headers["content-type"].startswith("text/plain"), reply.headers
    return reply.text


def json_log_lines(output: str) -> list[dict]:
    """Every line of a process's output that is a JSON object (the services' structured logs)."""
    lines = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


@dataclass
class HeldRequest:
    """Sends `head` of a body at once and the rest only after `release()`, on a thread.

    `result` holds the response (or `error` the exception) once the server has answered."""

    method: str
    url: str
    head: bytes
    tail: bytes
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    result: httpx.Response | None = None
    error: BaseException | None = None
    _gate: threading.Event = field(default_factory=threading.Event)
    _sent_head: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _body(self) -> Iterator[bytes]:
        yield self.head
        self._sent_head.set()
        if not self._gate.wait(self.timeout):
            raise TimeoutError("the held request was never released")
        yield self.tail

    def _run(self) -> None:
        headers = {"content-length": str(len(self.head) + len(self.tail)), **self.headers}
        try:
            with httpx.Client(timeout=self.timeout) as client:
                self.result = client.request(self.method, self.url, content=self._body(), headers=headers,
                                             params=self.params)
        except BaseException as exc:  # reported to the test through `error`
            self.error = exc

    def start(self) -> HeldRequest:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._sent_head.wait(self.timeout):
            raise TimeoutError(f"could not start sending to {self.url}")
        return self

    def release(self) -> None:
        self._gate.set()

    def wait(self) -> httpx.Response:
        assert self._thread is not None
        self._thread.join(self.timeout)
        if self.error is not None:
            raise self.error
        assert self.result is not None, "no answer"
        return self.result


def multipart(fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type (to send it in held parts)."""
    request = httpx.Request("POST", "http://x/", data=dict(fields), files=dict(files))
    return request.read(), request.headers["content-type"]


def check_http_metrics_and_request_id(base_url: str, service: str, route: str = "/healthz") -> str:
    """A GET of `route` echoes the caller's X-Request-ID (and mints one when there is none), and moves
    the request counter and the latency histogram in /metrics. Returns the request id used."""
    request_id = f"ops-test-{service}-1"
    before = scrape(f"{base_url}/metrics")
    reply = httpx.get(f"{base_url}{route}", headers={"X-Request-ID": request_id}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-request-id"] == request_id
    minted = httpx.get(f"{base_url}{route}", timeout=30).headers["x-request-id"]
    assert len(minted) == 32 and int(minted, 16) >= 0 and minted != request_id
    after = scrape(f"{base_url}/metrics")
    counted = {"method": "GET", "route": route, "status": "200"}
    timed = {"method": "GET", "route": route}
    assert metric_value(after, "maam_http_requests_total", counted) == metric_value(
        before, "maam_http_requests_total", counted) + 2
    assert metric_value(after, "maam_http_request_duration_seconds_count", timed) == metric_value(
        before, "maam_http_request_duration_seconds_count", timed) + 2
    assert metric_value(after, "maam_http_request_duration_seconds_bucket", {**timed, "le": "+Inf"}) >= 2
    assert metric_value(after, "maam_service_info", {"service": service}) == 1
    return request_id


def check_json_logs(output: str, service: str, request_id: str) -> None:
    """The process logged JSON lines tagged with its service, one of them bound to `request_id`."""
    lines = json_log_lines(output)
    assert lines, output[-2000:]
    assert {line["service"] for line in lines} == {service}
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line.get("request_id") == request_id for line in lines), output[-3000:]


def refused(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/healthz", timeout=2)
    except httpx.TransportError:
        return True
    return False


def sigterm_during_held_request(process: ServiceProcess, base_url: str, held: HeldRequest) -> httpx.Response:
    """Starts `held`, waits until the service is inside it, sends SIGTERM, checks that the service
    stopped accepting connections, then lets the request finish: returns its answer once the
    process has exited (through its graceful path)."""
    held.start()
    try:
        wait_until(lambda: metric_value(scrape(f"{base_url}/metrics"), "maam_http_requests_in_progress",
                                        {"method": held.method}) >= 1, 30, interval=0.02, what="the held request")
        process.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: refused(base_url), 15, interval=0.02, what="the listener to close after SIGTERM")
        assert process.alive(), "the service exited with a request in flight"
    finally:
        held.release()
    response = held.wait()
    process.proc.wait(30)
    # uvicorn re-raises the signal it handled once its graceful shutdown is done.
    assert process.proc.returncode in (0, -signal.SIGTERM), process.output[-3000:]
    assert "Application shutdown complete" in process.output
    return response
