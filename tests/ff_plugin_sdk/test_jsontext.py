"""JSON nested deeper than a parser follows (``[[[[...``) is bad input everywhere a request
carries JSON: a 400/422 or plain text, never a 500."""

from __future__ import annotations

import base64

import pytest

from ff_plugin_sdk.jsontext import NotJson, parse_json
from plugins_builtin.entities.ui import parse_fields
from tests.kernel.conftest import assert_envelope
from tests.ui.browsing import post_form, sign_in

DEEP = "[" * 100_000


def test_parse_json_says_not_json() -> None:
    assert parse_json('{"a": [1]}') == {"a": [1]}
    for text in (DEEP, "{oops", b"\xff"):
        with pytest.raises(NotJson):
            parse_json(text)


def test_an_entity_field_that_deep_is_kept_as_text() -> None:
    assert parse_fields(f"notes: {DEEP}") == ({"notes": DEEP}, None)


async def test_a_json_body(client) -> None:
    for method, url in (("POST", "/v1/entities"), ("PATCH", "/v1/assets/" + "0" * 64)):
        r = await client.request(method, url, content=DEEP,
                                 headers={"content-type": "application/json"})
        assert_envelope(r, 400, "invalid_json")


async def test_an_upload_meta_field(client, home) -> None:
    r = await client.post("/v1/assets/upload", files={"file": ("a.bin", b"x")},
                          data={"meta": DEEP})
    assert_envelope(r, 422, "validation_error")
    assert not list((home / "tmp").iterdir())


async def test_a_cursor(client) -> None:
    cursor = base64.urlsafe_b64encode(("[" * 10_000).encode()).decode()
    for url in ("/v1/entities", "/v1/assets"):
        assert_envelope(await client.get(url, params={"cursor": cursor}), 400,
                        "invalid_cursor")


async def test_user_metadata_typed_in_the_asset_page(client, anon, settings) -> None:
    asset_id = (await client.post("/v1/assets/upload",
                                  files={"file": ("a.txt", b"a")})).json()["asset_id"]
    ui = await sign_in(anon, settings.install_token)
    r = await post_form(ui, f"/ui/assets/{asset_id}/edit",
                        {"kind": "file", "filename": "a.txt", "user_metadata": DEEP})
    assert r.status_code == 422 and "nested too deeply" in r.text
