"""Events: stored with the change that caused them, listed, filtered, paged, streamed (SSE)
and delivered to subscribers in id order, and never when the change rolled back."""

from __future__ import annotations

import asyncio

import eventful
import httpx
import msgspec
import pytest
from subscribers import Collecting

from .conftest import assert_envelope, eventually


@pytest.fixture
def subscriber() -> Collecting:
    return Collecting()


@pytest.fixture
async def app(make_app, subscriber):
    return make_app(extra_plugins=[("eventful", eventful), ("collecting", subscriber)])


async def record(client: httpx.AsyncClient, type: str, text: str = "") -> int:
    response = await client.post("/v1/test/events", json={"type": type, "text": text})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def listed(client: httpx.AsyncClient, **params) -> dict:
    response = await client.get("/v1/events", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_recorded_event_is_listed(client) -> None:
    event_id = await record(client, "note.created", "hello")
    page = await listed(client)
    event = next(e for e in page["items"] if e["id"] == event_id)
    assert event["type"] == "note.created"
    assert event["data"] == {"text": "hello"}
    assert event["created_at"].endswith("Z")
    assert page["last_id"] >= event_id


async def test_event_carries_the_request_correlation_id(client) -> None:
    response = await client.post("/v1/test/events", json={"type": "note.created"},
                                 headers={"x-correlation-id": "evt-cid-1"})
    event_id = response.json()["id"]
    page = await listed(client)
    assert next(e for e in page["items"] if e["id"] == event_id)["correlation_id"] == "evt-cid-1"


async def test_events_are_filtered_by_type_prefix(client) -> None:
    a = await record(client, "note.created")
    await record(client, "photo.created")
    b = await record(client, "note.deleted")
    await record(client, "notebook.created")

    assert [e["id"] for e in (await listed(client, type="note."))["items"]] == [a, b]
    assert [e["id"] for e in (await listed(client, type="note.deleted"))["items"]] == [b]
    # A prefix is literal text: SQL wildcards in it match nothing.
    assert (await listed(client, type="note%"))["items"] == []
    assert (await listed(client, type="_ote."))["items"] == []


async def test_events_are_paginated_by_after(client) -> None:
    ids = [await record(client, "page.test", str(n)) for n in range(5)]
    first = await listed(client, type="page.", limit=2)
    assert [e["id"] for e in first["items"]] == ids[:2]
    second = await listed(client, type="page.", limit=2, after=first["next_cursor"])
    assert [e["id"] for e in second["items"]] == ids[2:4]
    third = await listed(client, type="page.", limit=2, after=second["next_cursor"])
    assert [e["id"] for e in third["items"]] == ids[4:]
    done = await listed(client, type="page.", limit=2, after=third["next_cursor"])
    assert done["items"] == [] and done["next_cursor"] is None


async def test_bad_after_is_422(client) -> None:
    assert_envelope(await client.get("/v1/events?after=latest"), 422, "validation_error")


async def test_after_beyond_what_sqlite_stores_is_422(client) -> None:
    response = await client.get("/v1/events", params={"after": 2**63})
    assert_envelope(response, 422, "validation_error")
    assert response.json()["error"]["details"][0]["path"] == "query.after"


async def test_event_of_a_rolled_back_transaction_is_neither_stored_nor_delivered(
    client, subscriber
) -> None:
    refused = await client.post("/v1/test/events/fail", json={"type": "ghost.created"})
    assert_envelope(refused, 409, "conflict")
    later = await record(client, "real.created")

    # Delivery is in id order, so once the later event arrived the ghost would have too.
    await eventually(lambda: any(e.id == later for e in subscriber.events),
                     what="the later event to be delivered")
    assert [e.type for e in subscriber.events] == ["real.created"]
    assert [e["type"] for e in (await listed(client))["items"]] == ["real.created"]


async def test_subscriber_gets_events_in_id_order(client, subscriber) -> None:
    ids = await asyncio.gather(*(record(client, "burst.event", str(n)) for n in range(20)))
    await eventually(lambda: len(subscriber.events) >= 20, what="20 deliveries")
    delivered = [e.id for e in subscriber.events]
    assert delivered == sorted(ids)
    assert [e["id"] for e in (await listed(client, type="burst."))["items"]] == delivered


# --- server-sent events ---------------------------------------------------------------


async def read_sse(response: httpx.Response, count: int) -> list[dict]:
    """Read ``count`` events off an SSE response (bounded by the caller's timeout)."""
    events, current = [], {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value
    raise AssertionError(f"stream ended after {len(events)} of {count} events")


async def test_sse_resumes_after_last_event_id(client, streaming) -> None:
    first = await record(client, "stream.one")
    second = await record(client, "stream.two")
    third = await record(client, "stream.three")

    async with asyncio.timeout(5):
        async with streaming.stream("GET", "/v1/events/stream",
                                    headers={"Last-Event-ID": str(first)}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = await read_sse(response, 2)

    assert [int(e["id"]) for e in events] == [second, third]
    assert [e["event"] for e in events] == ["stream.two", "stream.three"]
    body = msgspec.json.decode(events[1]["data"])
    assert body["id"] == third and body["type"] == "stream.three"


async def test_sse_ignores_a_last_event_id_that_is_no_event_id(client, streaming) -> None:
    first = await record(client, "junk.one")
    second = await record(client, "junk.two")
    for junk in (str(2**64), "9" * 40, "-1", "abc", "²", "1¹"):  # ² is a digit to isdigit()
        async with asyncio.timeout(5), streaming.stream(
                "GET", f"/v1/events/stream?after={first}",
                headers={"Last-Event-ID": junk.encode("latin-1")}) as response:
            assert response.status_code == 200
            events = await read_sse(response, 1)
        assert int(events[0]["id"]) == second, junk


async def test_sse_delivers_events_committed_while_connected(client, streaming) -> None:
    before = await record(client, "live.before")
    async with asyncio.timeout(5):
        async with streaming.stream("GET", "/v1/events/stream",
                                    params={"type": "live."}) as response:
            # A new subscriber without a resume point sees what happens from now on.
            live = await record(client, "live.after")
            await record(client, "other.noise")
            last = await record(client, "live.last")
            events = await read_sse(response, 2)
    assert [int(e["id"]) for e in events] == [live, last]
    assert before not in [int(e["id"]) for e in events]


async def test_sse_needs_the_token(anon) -> None:
    response = await anon.get("/v1/events/stream")
    assert_envelope(response, 401, "unauthorized")
