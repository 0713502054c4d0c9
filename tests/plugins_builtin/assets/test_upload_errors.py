"""Uploads that fail: each one is an error envelope with the right status (never a 500) and
leaves nothing behind — no staged file in ``tmp/``, no blob, no row."""

from __future__ import annotations

import json

import pytest

from kernel.config import load_settings
from tests.conftest import running
from tests.plugins_builtin.assets.conftest import (
    BOUNDARY,
    PNG,
    UNKNOWN_ID,
    UPLOAD,
    Store,
    error_of,
    make_entity,
    multipart,
    part,
    raw_upload,
    sha,
    upload,
    uploaded,
)

FILE = part("file", b"the file's bytes", filename="f.bin",
            content_type="application/octet-stream")


@pytest.fixture
async def existing(client, store):
    """One asset already stored, so "nothing new" is not the same as "nothing at all"."""
    return await uploaded(client, PNG, "existing.png")


# -- the request is not a usable multipart form ------------------------------------------

@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b'{"file": "x"}'),
    ("multipart/form-data", multipart([FILE])),
    ("multipart/mixed; boundary=" + BOUNDARY, multipart([FILE])),
    (None, multipart([FILE])),
], ids=["json", "no-boundary", "not-form-data", "no-content-type"])
async def test_not_a_multipart_form_is_415(client, store, existing, content_type, body):
    before = await store.snapshot()
    r = await raw_upload(client, body, content_type=content_type)
    error_of(r, 415, "unsupported_media_type")
    await store.assert_nothing_left(before)


@pytest.mark.parametrize(("body", "status", "code", "path"), [
    (multipart([part("kind", b"file")]), 422, "validation_error", "form.file"),
    (multipart([]), 422, "validation_error", "form.file"),
    (multipart([FILE, part("file", b"another", filename="g.bin")]), 422,
     "validation_error", "form.file"),
    (multipart([FILE, part("comment", b"hello")]), 422, "validation_error", "form.comment"),
    (multipart([part("comment", b"first"), FILE]), 422, "validation_error", "form.comment"),
    (multipart([FILE, part("kind", b"Not A Kind")]), 422, "validation_error", "kind"),
    (multipart([FILE, part("kind", "modèle.lora".encode())]), 422, "validation_error",
     "kind"),
    (multipart([FILE, part("meta", b"{not json")]), 422, "validation_error", "form.meta"),
    (multipart([FILE, part("meta", b"[1, 2]")]), 422, "validation_error", "form.meta"),
    (multipart([FILE, part("meta", b'"text"')]), 422, "validation_error", "form.meta"),
    (multipart([FILE, part("meta", b"{}"), part("meta", b"{}")]), 422, "validation_error",
     "form.meta"),
    (multipart([FILE, part("entity_id", b"not-an-id")]), 422, "validation_error",
     "form.entity_id"),
    (multipart([FILE, part("derived_from_asset_id", b"xyz")]), 422, "validation_error",
     "form.derived_from_asset_id"),
    (multipart([FILE, part("role", b"r" * 101)]), 422, "validation_error", "form.role"),
    (multipart([FILE, part("role", b"caf\xe9")]), 422, "validation_error", "form.role"),
    (multipart([FILE, part("kind", b"\xff\xfe")]), 422, "validation_error", "form.kind"),
    (multipart([FILE], close=False), 400, "invalid_multipart", None),
    (multipart([FILE])[:-40], 400, "invalid_multipart", None),
    (b"this is not multipart at all", 400, "invalid_multipart", None),
    (b"--" + BOUNDARY.encode() + b"\r\nno-colon-header\r\n\r\ndata\r\n--" + BOUNDARY.encode()
     + b"--\r\n", 400, "invalid_multipart", None),
    (multipart([b"Content-Type: text/plain\r\n\r\nno disposition"]), 400, "invalid_multipart",
     None),
    (multipart([part("", b"x", disposition="form-data")]), 400, "invalid_multipart", None),
    (multipart([FILE, *[part("kind", b"file")] * 1000]), 422, "validation_error", None),
], ids=["no-file-part", "no-parts", "two-file-parts", "unknown-field-after",
        "unknown-field-before", "bad-kind", "non-ascii-kind", "meta-not-json",
        "meta-an-array", "meta-a-string", "meta-twice", "entity-id-malformed",
        "derived-from-malformed", "role-too-long", "role-not-utf8", "kind-not-utf8",
        "no-closing-boundary", "cut-short", "garbage", "bad-part-header",
        "no-content-disposition", "part-without-name", "too-many-fields"])
async def test_a_bad_form_is_an_envelope_and_leaves_nothing(client, store, existing, body,
                                                            status, code, path):
    before = await store.snapshot()
    r = await raw_upload(client, body)
    error = error_of(r, status, code)
    if path is not None:
        assert path in [d.get("path") for d in error["details"]], error
    await store.assert_nothing_left(before)


@pytest.mark.parametrize(("params", "path"), [
    ({"kind": "Bad Kind"}, "query.kind"),
    ({"entity_id": "nope"}, "query.entity_id"),
    ({"derived_from_asset_id": "abc"}, "query.derived_from_asset_id"),
    ({"role": ""}, "query.role"),
], ids=["kind", "entity_id", "derived_from", "empty-role"])
async def test_bad_query_parameters_are_422(client, store, existing, params, path):
    before = await store.snapshot()
    r = await upload(client, b"query checked", params=params)
    error = error_of(r, 422, "validation_error")
    assert any(path in str(d.get("path")) for d in error["details"]), error
    await store.assert_nothing_left(before)


# -- what the request names does not exist ------------------------------------------------

@pytest.mark.parametrize("where", ["form", "query"])
async def test_an_unknown_entity_is_404_and_nothing_is_stored(client, store, existing, where):
    ada = await make_entity(client)
    before = await store.snapshot()
    names = [ada, UNKNOWN_ID]
    kw = {"fields": {"entity_id": names}} if where == "form" else {"params": {"entity_id": names}}
    r = await upload(client, b"would be linked", **kw)
    error = error_of(r, 404, "entity_not_found")
    assert UNKNOWN_ID in error["message"]
    await store.assert_nothing_left(before)
    # and the known entity got no link either
    r = await client.get(f"/v1/entities/{ada}/assets")
    assert r.json()["items"] == []


async def test_a_deleted_entity_is_unknown(client, store, existing):
    ada = await make_entity(client)
    assert (await client.delete(f"/v1/entities/{ada}")).status_code == 204
    before = await store.snapshot()
    r = await upload(client, b"to a deleted entity", fields={"entity_id": ada})
    error_of(r, 404, "entity_not_found")
    await store.assert_nothing_left(before)


@pytest.mark.parametrize("where", ["form", "query"])
async def test_derived_from_an_unknown_or_deleted_asset_is_404(client, kernel, store, existing,
                                                               where):
    gone = await uploaded(client, b"deleted source", "gone.bin")
    assert (await client.delete(f"/v1/assets/{gone['asset_id']}")).status_code == 204
    await kernel.services["assets.collector"].sweep()  # its blob goes now, not mid-test
    for source in (UNKNOWN_ID, gone["asset_id"]):
        before = await store.snapshot()
        field = {"derived_from_asset_id": source}
        kw = {"fields": field} if where == "form" else {"params": field}
        r = await upload(client, b"a derived file", **kw)
        error_of(r, 404, "asset_not_found")
        await store.assert_nothing_left(before)


async def test_an_asset_cannot_be_derived_from_itself(client, store, existing):
    before = await store.snapshot()
    r = await upload(client, PNG, fields={"derived_from_asset_id": sha(PNG)})
    error_of(r, 422, "validation_error")
    await store.assert_nothing_left(before)
    got = await client.get(f"/v1/assets/{sha(PNG)}")
    assert got.json()["derived_from_asset_id"] is None


async def test_a_role_without_an_entity_to_link_is_422(client, store, existing):
    before = await store.snapshot()
    r = await upload(client, b"role for nobody", fields={"role": "reference"})
    error = error_of(r, 422, "validation_error")
    assert "entity_id" in error["message"]
    await store.assert_nothing_left(before)


# -- too large ---------------------------------------------------------------------------

@pytest.fixture
async def small_client(settings, make_app):
    """A Core whose uploads may hold at most 1000 bytes (``plugins.assets``)."""
    config = settings.paths.config_file  # as the ``settings`` fixture wrote it
    data = json.loads(config.read_text("utf-8"))
    data["plugins"] = {"assets": {"max_upload_bytes": 1000}}
    config.write_text(json.dumps(data), encoding="utf-8")
    small = load_settings(settings.paths.home, env={})
    app = make_app(settings=small)
    async with running(app, small.install_token) as client:
        yield client, Store(app.state.kernel, small)


async def test_a_file_over_the_limit_is_413_and_leaves_nothing(small_client):
    client, store = small_client
    await uploaded(client, b"x" * 1000, "exactly-the-limit.bin")
    before = await store.snapshot()
    for size in (1001, 64 * 1024):
        r = await upload(client, b"y" * size, "too-big.bin")
        error = error_of(r, 413, "payload_too_large")
        assert "1000 bytes" in error["message"]
        await store.assert_nothing_left(before)
    # far over: refused by the route's body limit, before the file is looked at
    r = await upload(client, b"y" * 3 * 1024 * 1024, "much-too-big.bin")
    error_of(r, 413, "payload_too_large")
    await store.assert_nothing_left(before)


async def test_a_file_over_the_limit_in_small_pieces_is_413(small_client):
    client, store = small_client
    before = await store.snapshot()

    async def pieces():
        body = multipart([part("file", b"z" * 5000, filename="slow.bin")])
        for start in range(0, len(body), 100):
            yield body[start:start + 100]

    r = await client.post(UPLOAD, content=pieces(), headers={
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    error_of(r, 413, "payload_too_large")
    await store.assert_nothing_left(before)


async def test_an_oversized_form_field_is_413(client, store, existing):
    before = await store.snapshot()
    r = await raw_upload(client, multipart([FILE, part("meta", b" " * (1024 * 1024 + 1))]))
    error_of(r, 413, "payload_too_large")
    await store.assert_nothing_left(before)
