"""Relationship test helpers: entities and relationships made over HTTP, and the UI session."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kernel.config import Settings
from tests.ui.browsing import SignedIn, sign_in

UNKNOWN_ID = "0" * 64


@pytest.fixture
async def ui(anon: httpx.AsyncClient, settings: Settings) -> SignedIn:
    """``anon`` signed in through the login form (cookie session, no token header)."""
    return await sign_in(anon, settings.install_token)


async def entity(client: httpx.AsyncClient, name: str, **body: Any) -> str:
    r = await client.post("/v1/entities", json={"display_name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


async def relate(client: httpx.AsyncClient, from_id: str, type: str, to_id: str,
                 **body: Any) -> dict:
    r = await client.post("/v1/relationships", json={
        "from_entity_id": from_id, "to_entity_id": to_id, "type": type, **body})
    assert r.status_code == 201, r.text
    return r.json()


async def listing(client: httpx.AsyncClient, entity_id: str, **params: Any) -> dict:
    r = await client.get("/v1/relationships", params={"entity_id": entity_id, **params})
    assert r.status_code == 200, r.text
    return r.json()


async def seen_from(client: httpx.AsyncClient, entity_id: str, **params: Any
                    ) -> list[tuple[str, str | None, str | None]]:
    """(direction, label, other's name) of each listed relationship, in order."""
    return [(i["direction"], i["label"], i["other_display_name"])
            for i in (await listing(client, entity_id, **params))["items"]]


async def type_names(client: httpx.AsyncClient, query: str, **params: Any) -> list[str]:
    r = await client.get("/v1/relation-types", params={"query": query, **params})
    assert r.status_code == 200, r.text
    return [t["name"] for t in r.json()["items"]]
