"""Descriptor test helpers: an entity to describe, and descriptors made over the API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kernel.config import Settings
from tests.ui.browsing import SignedIn, sign_in

UNKNOWN_ID = "0" * 64
#: far from today whatever day the tests run: what is past, current and upcoming is fixed
PAST = ("1990-01-01", "1999-12-31")
FUTURE_FROM = "2990-01-01"


async def new_entity(client: httpx.AsyncClient, name: str = "Ada Lovelace") -> str:
    r = await client.post("/v1/entities", json={"display_name": name})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


async def add(client: httpx.AsyncClient, entity_id: str, key: str, value: Any,
              **body: Any) -> dict:
    r = await client.post(f"/v1/entities/{entity_id}/descriptors",
                          json={"key": key, "value": value, **body})
    assert r.status_code == 201, r.text
    return r.json()


async def listed(client: httpx.AsyncClient, entity_id: str, **params: Any) -> list[dict]:
    r = await client.get(f"/v1/entities/{entity_id}/descriptors", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def define(client: httpx.AsyncClient, field_key: str, field_type: str,
                 **rules: Any) -> dict:
    """A descriptor-scope field definition (the entities plugin's admin API)."""
    r = await client.post("/v1/admin/field-defs", json={
        "field_key": field_key, "scope": "descriptor", "field_type": field_type, **rules})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
async def entity_id(client: httpx.AsyncClient) -> str:
    return await new_entity(client)


@pytest.fixture
async def ui(anon: httpx.AsyncClient, settings: Settings) -> SignedIn:
    """``anon`` signed in through the login form (cookie session, no token header)."""
    return await sign_in(anon, settings.install_token)
