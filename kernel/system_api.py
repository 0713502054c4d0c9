"""The kernel's own endpoints: health, ping, system info, events (list and SSE stream)."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import StreamingResponse

from ff_plugin_sdk.types import ApiRoute, SqlInt
from kernel.auth import PUBLIC
from kernel.clock import utc_now
from kernel.events import EventBus, parse_event_id
from kernel.services import Kernel

KEEPALIVE_SECONDS = 15.0


class Health(msgspec.Struct, kw_only=True):
    status: str
    version: str


class Ping(msgspec.Struct, kw_only=True):
    ok: bool
    version: str
    time: str


class PluginSummary(msgspec.Struct, kw_only=True):
    name: str
    module: str
    version: str | None
    distribution: str | None


class SystemInfo(msgspec.Struct, kw_only=True):
    version: str
    home: str
    paths: dict[str, str]
    plugins: list[PluginSummary]
    sqlite_version: str
    python_version: str
    platform: str
    started_at: float
    uptime_seconds: float
    bind_host: str
    port: int


class EventOut(msgspec.Struct, kw_only=True):
    id: int
    type: str
    created_at: str
    data: dict[str, Any]
    correlation_id: str | None


class EventPage(msgspec.Struct, kw_only=True):
    items: list[EventOut]
    #: pass as ``after`` to continue; null when there is nothing newer yet
    next_cursor: str | None
    last_id: int


class EventQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    after: SqlInt = 0
    #: type prefix, e.g. ``entity.`` or ``entity.created``
    type: str | None = None
    limit: int = 100


class StreamQuery(msgspec.Struct, kw_only=True):
    after: SqlInt | None = None
    type: str | None = None


def _out(e: object) -> EventOut:
    return msgspec.convert(e, EventOut, from_attributes=True)


def routes(kernel: Kernel) -> list[ApiRoute]:
    bus = kernel.events

    async def healthz(request: Request) -> Health:
        """Liveness: 200 once Core is serving."""
        return Health(status="ok", version=kernel.version)

    async def ping(request: Request) -> Ping:
        """Check that the token works."""
        return Ping(ok=True, version=kernel.version, time=utc_now())

    async def system_info(request: Request) -> SystemInfo:
        """Version, resolved paths, loaded plugins, SQLite version."""
        return SystemInfo(
            version=kernel.version,
            home=str(kernel.paths.home),
            paths=kernel.paths.as_dict(),
            plugins=[PluginSummary(name=p.name, module=p.module, version=p.version,
                                   distribution=p.distribution) for p in kernel.plugins],
            sqlite_version=kernel.db.sqlite_version,
            python_version=sys.version.split()[0],
            platform=platform.platform(),
            started_at=kernel.started_at,
            uptime_seconds=round(time.time() - kernel.started_at, 3),
            bind_host=kernel.settings.host,
            port=kernel.settings.port,
        )

    async def list_events(request: Request, query: EventQuery) -> EventPage:
        """Events after an id, oldest first; poll with ``after=<next_cursor>``."""
        limit = max(1, min(query.limit, 1000))
        events = await bus.list(max(query.after, 0), query.type, limit)
        last = events[-1].id if events else max(query.after, 0)
        return EventPage(items=[_out(e) for e in events],
                         next_cursor=str(last) if events else None, last_id=bus.last_id)

    async def stream_events(request: Request, query: StreamQuery) -> StreamingResponse:
        """Server-sent events; resumes after ``Last-Event-ID`` (or ``after``)."""
        start = parse_event_id(request.headers.get("last-event-id"))
        if start is None:  # without ``after``, a new subscriber sees what happens from now on
            start = bus.last_id if query.after is None else query.after
        return StreamingResponse(_sse(request, bus, start, query.type),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return [
        ApiRoute(path="/healthz", endpoint=healthz, scope=PUBLIC, response=Health,
                 tags=["system"]),
        ApiRoute(path="/v1/ping", endpoint=ping, scope="system:read", response=Ping,
                 tags=["system"]),
        ApiRoute(path="/v1/system/info", endpoint=system_info, scope="system:read",
                 response=SystemInfo, tags=["system"]),
        ApiRoute(path="/v1/events", endpoint=list_events, scope="events:read",
                 query=EventQuery, response=EventPage, tags=["events"]),
        ApiRoute(path="/v1/events/stream", endpoint=stream_events, scope="events:read",
                 query=StreamQuery, media_type="text/event-stream", tags=["events"]),
    ]


async def _sse(request: Request, bus: EventBus, after: int,
               type_prefix: str | None) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    while not bus.closed.is_set():
        events = await bus.list(after, type_prefix, 500)
        for event in events:
            data = msgspec.json.encode(_out(event))
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), data)
            after = event.id
        if len(events) == 500:
            continue
        if not events and bus.last_id > after:
            after = bus.last_id  # newer events exist but none match the filter
        if await request.is_disconnected():
            return
        if not await bus.wait(after, KEEPALIVE_SECONDS):
            yield b": keepalive\n\n"
