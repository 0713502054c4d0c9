"""Throwaway plugin: routes that record events in a write transaction."""

import msgspec

from ff_plugin_sdk import ApiRoute, Conflict, hookimpl


class Note(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str = "note.created"
    text: str = ""


class Recorded(msgspec.Struct, kw_only=True):
    id: int


@hookimpl
def faceforge_routes(kernel):
    async def record(request, body: Note) -> Recorded:
        """Record one event."""
        event_id = await kernel.db.write(lambda tx: tx.event(body.type, {"text": body.text}))
        return Recorded(id=event_id)

    async def record_then_fail(request, body: Note) -> Recorded:
        """Record an event, then refuse: the transaction rolls back."""
        def refuse(tx):
            tx.event(body.type, {"text": body.text})
            raise Conflict("refused after recording")

        return await kernel.db.write(refuse)

    return [
        ApiRoute(path="/test/events", endpoint=record, scope="events:read", methods=["POST"],
                 body=Note, response=Recorded, status_code=201),
        ApiRoute(path="/test/events/fail", endpoint=record_then_fail, scope="events:read",
                 methods=["POST"], body=Note, response=Recorded),
    ]
