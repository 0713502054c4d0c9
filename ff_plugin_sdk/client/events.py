"""``client.events``: what happened in Core, read by id (``list``) or followed live over the
server-sent-events stream (``follow``), resuming where it left off."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import msgspec

from ff_plugin_sdk.client._group import Group, M, endpoint, streaming
from ff_plugin_sdk.client._plan import (
    READ,
    Call,
    Emit,
    Exchange,
    Feed,
    Plan,
    Sleep,
    Unreachable,
    error_of,
    read_rest,
    unreachable,
)
from ff_plugin_sdk.client._sse import Parser
from ff_plugin_sdk.client.models import Event, EventPage
from ff_plugin_sdk.types import SQL_INT_MAX

#: Core sends a keep-alive every 15 s: a stream silent for this long is dead
STREAM_READ_TIMEOUT = 60.0
_event = msgspec.json.Decoder(Event)


class Events(Group[M]):
    @endpoint
    def list(self, after: int = 0, *, type: str | None = None,
             limit: int = 100) -> Plan[EventPage]:
        """Events after the id ``after``, oldest first (``type`` is a prefix:
        ``entity.`` or ``entity.created``); continue with ``after=page.next_cursor``."""
        return self._fetch(Call("GET", "/v1/events", params={
            "after": after, "type": type, "limit": limit}), EventPage)

    @endpoint
    def last_id(self) -> Plan[int]:
        """The newest event's id (0 before the first)."""
        page = yield from Events.list.build(self, SQL_INT_MAX, limit=1)
        return page.last_id

    @streaming
    def follow(self, after: int | None = None, types: str | Sequence[str] | None = None, *,
               max_failures: int | None = None) -> Feed[Event]:
        """Every event after the id ``after`` (None: from now on), in order, as it is
        committed, for as long as the iteration goes.

        ``types`` are prefixes (``"entity."``, ``"job.succeeded"``): only events whose type
        starts with one of them are delivered.  A dropped connection (Core restarting, a
        network failure) is reopened with back-off from the last event delivered
        (``Last-Event-ID``): nothing is lost or delivered twice.  ``max_failures``
        consecutive failed reconnects raise :class:`Unreachable` (None: keep trying);
        errors Core answers (401 after the token was revoked, 403) raise at once.
        """
        prefixes = (types,) if isinstance(types, str) else tuple(types or ())
        # one prefix is filtered by Core; several by us (the stream takes one)
        server_type = prefixes[0] if len(prefixes) == 1 else None
        last = after if after is not None else (yield from Events.last_id.build(self))
        failures = 0
        while True:
            call = Call("GET", "/v1/events/stream", params={"type": server_type},
                        headers={"Last-Event-ID": str(last), "Accept": "text/event-stream"},
                        read_timeout=STREAM_READ_TIMEOUT)
            problem: Exception
            try:
                response = yield Exchange(call, stream=True)
                if response.status_code != 200:
                    problem = error_of(response, (yield from read_rest()))
                    if response.status_code not in self._retry.statuses:
                        raise problem
                else:
                    parser = Parser()
                    while chunk := (yield READ):
                        failures = 0  # it answers: the next drop starts the back-off anew
                        for message in parser.feed(chunk):
                            event = _event.decode(message.data)
                            if event.id <= last:
                                continue
                            last = event.id
                            if not prefixes or event.type.startswith(prefixes):
                                yield Emit(event)
                    problem = Unreachable("the event stream ended")
            except httpx.TransportError as exc:
                problem = unreachable(call, exc)
            failures += 1
            if max_failures is not None and failures > max_failures:
                raise problem
            yield Sleep(self._retry.delay(failures - 1))
