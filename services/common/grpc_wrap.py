"""Wrapping a grpc.aio method handler so code runs around every call, whatever the RPC kind.

Server interceptors in grpc.aio only see the call *before* it runs; to time an RPC, read its final
status or bind a context variable for its duration, the handler's behaviour itself must be
wrapped. `wrap_handler(handler, around)` does that for the four RPC kinds, for coroutine handlers,
async-generator handlers and handlers that write with `context.write`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import grpc

# around(context) is entered before the behaviour runs and exited when the call is over (with the
# exception, if any, that ended it).
Around = Callable[[grpc.aio.ServicerContext], AbstractContextManager[Any]]

_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def rpc_kind(handler: grpc.RpcMethodHandler) -> str:
    for kind in _FACTORIES:
        if getattr(handler, kind, None) is not None:
            return kind
    raise ValueError(f"not a method handler: {handler!r}")


def _wrap_behavior(behavior: Callable[..., Any], around: Around) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with around(context):
                async for item in behavior(request, context):
                    yield item

        return stream

    if inspect.iscoroutinefunction(behavior):

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with around(context):
                return await behavior(request, context)

        return call

    def sync_call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        with around(context):
            return behavior(request, context)

    return sync_call


def wrap_handler(handler: grpc.RpcMethodHandler | None, around: Around) -> grpc.RpcMethodHandler | None:
    """A handler whose behaviour runs inside `around(context)`; None (unknown method) stays None."""
    if handler is None:
        return None
    kind = rpc_kind(handler)
    behavior = getattr(handler, kind)
    return _FACTORIES[kind](
        _wrap_behavior(behavior, around),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class WrappedHandlers:
    """Each method handler wrapped once and reused: a server interceptor that wrapped on every call
    would pay for it on every call. `make_around` runs once per handler."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def get(self, handler: grpc.RpcMethodHandler, make_around: Callable[[], Around]) -> grpc.RpcMethodHandler:
        cached = self._by_id.get(id(handler))
        if cached is None or cached[0] is not handler:  # (an id can be reused once a handler is gone)
            wrapped = wrap_handler(handler, make_around())
            assert wrapped is not None
            cached = (handler, wrapped)
            self._by_id[id(handler)] = cached
        return cached[1]
