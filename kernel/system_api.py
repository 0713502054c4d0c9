"""The kernel's own endpoints: health, ping, system info, events (list and SSE stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import StreamingResponse

from ff_plugin_sdk.types import PUBLIC, ApiRoute, Principal, SqlInt, parse_event_id
from kernel.clock import utc_now
from kernel.events import EventBus
from kernel.services import Kernel

KEEPALIVE_SECONDS = 15.0
#: how often an open stream checks that its caller's credential still holds
RECHECK_SECONDS = 1.0


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


class ScopeInfo(msgspec.Struct, kw_only=True):
    plugin: str
    description: str


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
    #: (path, plugin) of every API route
    routes: list[tuple[str, str]]
    #: every permission scope: who declared it and what it allows
    scopes: dict[str, ScopeInfo]


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


class Status(msgspec.Struct, kw_only=True):
    plugin: str
    name: str
    #: ok, off or error
    state: str
    message: str


class StatusPage(msgspec.Struct, kw_only=True):
    items: list[Status]


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
        return msgspec.convert(kernel.system_info(), SystemInfo)

    async def system_status(request: Request) -> StatusPage:
        """How each plugin's features are doing: what is off, and why."""
        return msgspec.convert({"items": await kernel.status()}, StatusPage)

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
        principal: Principal = request.scope["ff.principal"]
        authenticator = kernel.auth.authenticator
        return StreamingResponse(_sse(request, bus, start, query.type,
                                      lambda: authenticator.still_valid(principal)),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return [
        ApiRoute(path="/healthz", endpoint=healthz, scope=PUBLIC, response=Health,
                 tags=["system"]),
        ApiRoute(path="/v1/ping", endpoint=ping, scope="system:read", response=Ping,
                 tags=["system"]),
        ApiRoute(path="/v1/system/info", endpoint=system_info, scope="system:read",
                 response=SystemInfo, tags=["system"]),
        ApiRoute(path="/v1/system/status", endpoint=system_status, scope="system:read",
                 response=StatusPage, tags=["system"]),
        ApiRoute(path="/v1/events", endpoint=list_events, scope="events:read",
                 query=EventQuery, response=EventPage, tags=["events"]),
        ApiRoute(path="/v1/events/stream", endpoint=stream_events, scope="events:read",
                 query=StreamQuery, media_type="text/event-stream", tags=["events"]),
    ]


async def _sse(request: Request, bus: EventBus, after: int, type_prefix: str | None,
               still_valid: Callable[[], bool]) -> AsyncIterator[bytes]:
    """Events as they commit; ends on shutdown, on disconnect, and within about a second
    of the caller's credential ending (token rotated or revoked, session signed out or
    expired)."""
    yield b"retry: 2000\n\n"
    quiet = 0.0
    while not bus.closed.is_set() and still_valid():
        # everything up to ``seen`` was committed before the query: it finds what matches
        seen = bus.last_id
        events = await bus.list(after, type_prefix, 500)
        for event in events:
            data = msgspec.json.encode(_out(event))
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), data)
            after = event.id
        if len(events) == 500:
            continue
        if not events and seen > after:
            after = seen  # newer events exist but none match the filter
        if await request.is_disconnected():
            return
        if await bus.wait(after, RECHECK_SECONDS):
            quiet = 0.0
            continue
        quiet += RECHECK_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield b": keepalive\n\n"
