"""The two drivers that run plans (:mod:`._plan`) over httpx: one for asyncio, one for
blocking code.  Each only performs the operations a plan yields; every decision (retries,
resumes, error mapping) is the plan's, written once for both.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any, TypeVar

import anyio
import httpx
import msgspec

from ff_plugin_sdk.client._plan import Call, Emit, Exchange, Plan, Read, Retry

T = TypeVar("T")
_DONE = object()


class _Stepper:
    """A plan's progress: sends it the last result (or throws the last transport error)
    and says what it wants next."""

    def __init__(self, plan: Generator[Any, Any, Any]) -> None:
        self.plan = plan
        self.value: Any = None
        self.error: httpx.TransportError | None = None
        self.result: Any = None

    def next(self) -> Any:
        value, error = self.value, self.error
        self.value = self.error = None
        try:
            return self.plan.throw(error) if error is not None else self.plan.send(value)
        except StopIteration as stop:
            self.result = stop.value
            return _DONE


def build(http: httpx.Client | httpx.AsyncClient, call: Call, timeout: httpx.Timeout,
          is_async: bool) -> httpx.Request:
    """The httpx request for ``call``; a streaming body is read as it is sent."""
    headers = dict(call.headers or {})
    content: Any = call.content
    if call.json is not None:
        content = msgspec.json.encode(call.json)
        headers["Content-Type"] = "application/json"
    elif content is not None and not isinstance(content, bytes):
        if content.length is not None:  # not chunked: some servers and proxies want it
            headers["Content-Length"] = str(content.length)
        headers.setdefault("Content-Type", content.media_type)
        content = content.achunks() if is_async else content.chunks()
    if call.read_timeout is not None:
        timeout = httpx.Timeout(timeout.connect, read=call.read_timeout, write=timeout.write,
                                pool=timeout.pool)
    return http.build_request(call.method, call.path, params=call.query(), content=content,
                              headers=headers, timeout=timeout)


class AsyncDriver:
    def __init__(self, http: httpx.AsyncClient, retry: Retry, timeout: httpx.Timeout) -> None:
        self.http = http
        self.retry = retry
        self.timeout = timeout

    async def run(self, plan: Plan[T]) -> T:
        stepper = _Stepper(plan)
        async for _ in self._drive(stepper):
            raise TypeError("a plan run for its result emitted an item")
        return stepper.result

    def iterate(self, feed: Generator[Any, Any, None]) -> AsyncIterator[Any]:
        return self._drive(_Stepper(feed))

    async def _drive(self, stepper: _Stepper) -> AsyncIterator[Any]:
        stream: httpx.Response | None = None
        chunks: AsyncIterator[bytes] | None = None
        try:
            while (op := stepper.next()) is not _DONE:
                if isinstance(op, Emit):
                    yield op.item
                    continue
                try:
                    if isinstance(op, Read):
                        stepper.value = await anext(chunks, b"") if chunks else b""
                    elif isinstance(op, Exchange):
                        if stream is not None:
                            await stream.aclose()
                            stream = chunks = None
                        stepper.value = response = await self.http.send(
                            build(self.http, op.call, self.timeout, True), stream=op.stream)
                        if op.stream:
                            stream, chunks = response, response.aiter_bytes()
                    else:
                        await anyio.sleep(op.seconds)
                except httpx.TransportError as exc:
                    stepper.error = exc
        finally:
            stepper.plan.close()
            if stream is not None:
                await stream.aclose()


class SyncDriver:
    def __init__(self, http: httpx.Client, retry: Retry, timeout: httpx.Timeout) -> None:
        self.http = http
        self.retry = retry
        self.timeout = timeout

    def run(self, plan: Plan[T]) -> T:
        stepper = _Stepper(plan)
        for _ in self._drive(stepper):
            raise TypeError("a plan run for its result emitted an item")
        return stepper.result

    def iterate(self, feed: Generator[Any, Any, None]) -> Iterator[Any]:
        return self._drive(_Stepper(feed))

    def _drive(self, stepper: _Stepper) -> Iterator[Any]:
        stream: httpx.Response | None = None
        chunks: Iterator[bytes] | None = None
        try:
            while (op := stepper.next()) is not _DONE:
                if isinstance(op, Emit):
                    yield op.item
                    continue
                try:
                    if isinstance(op, Read):
                        stepper.value = next(chunks, b"") if chunks else b""
                    elif isinstance(op, Exchange):
                        if stream is not None:
                            stream.close()
                            stream = chunks = None
                        stepper.value = response = self.http.send(
                            build(self.http, op.call, self.timeout, False), stream=op.stream)
                        if op.stream:
                            stream, chunks = response, response.iter_bytes()
                    else:
                        time.sleep(op.seconds)
                except httpx.TransportError as exc:
                    stepper.error = exc
        finally:
            stepper.plan.close()
            if stream is not None:
                stream.close()
