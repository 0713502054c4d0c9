"""tus creation and creation-with-upload: ``POST /v1/uploads`` — Location, expiry, lengths,
``Upload-Metadata`` (what it may say, and what is refused before any byte is sent) and a
body sent with the creation."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from tests.plugins_builtin.assets.conftest import (
    PNG,
    RFC3339_UTC,
    UNKNOWN_ID,
    Store,
    error_of,
    make_entity,
    sha,
    uploaded,
)
from tests.plugins_builtin.assets.tus import (
    DEFAULT_EXPIRY_SECONDS,
    Tus,
    assert_expires_in,
    asset_id_of,
    b64,
    configured,
    core,
    metadata,
    offset_of,
    tmp_files,
    upload_id,
    upload_path,
)

DATA = b"a file sent with tus\n" * 100


@pytest.fixture
def tus(client: httpx.AsyncClient) -> Tus:
    return Tus(client)


# -- creation ----------------------------------------------------------------------------

async def test_creation_answers_201_with_location_and_expiry(tus):
    since = datetime.now(UTC)
    r = await tus.create(len(DATA), metadata(filename="a.txt"))
    assert r.status_code == 201, r.text
    path = upload_path(r.headers["location"])
    assert_expires_in(r, DEFAULT_EXPIRY_SECONDS, since=since)
    assert offset_of(await tus.head(path)) == 0


async def test_the_upload_as_json(tus):
    meta = metadata(filename="a.txt", kind="doc.text")
    since = datetime.now(UTC)
    path = await tus.created(len(DATA), meta)
    status = await tus.status(path)
    assert set(status) == {"upload_id", "offset", "length", "metadata", "expires_at",
                           "asset_id", "created_at", "deduplicated"}
    assert status["upload_id"] == upload_id(path)
    assert status["offset"] == 0 and status["length"] == len(DATA)
    assert status["metadata"] == {"filename": "a.txt", "kind": "doc.text"}
    assert status["asset_id"] is None
    for stamp in (status["created_at"], status["expires_at"]):
        assert RFC3339_UTC.match(stamp), stamp
    created = datetime.fromisoformat(status["created_at"])
    assert since <= created <= datetime.now(UTC)
    expiry = datetime.fromisoformat(status["expires_at"]).timestamp() - created.timestamp()
    assert abs(expiry - DEFAULT_EXPIRY_SECONDS) <= 1

    await tus.patched(path, DATA[:7], 0)
    assert (await tus.status(path))["offset"] == 7
    await tus.patched(path, DATA[7:], 7)
    status = await tus.status(path)
    assert status["offset"] == len(DATA) and status["asset_id"] == sha(DATA)


async def test_metadata_may_be_absent_or_empty(tus):
    # tuspy sends ``Upload-Metadata:`` with an empty value when it has no metadata
    for meta in (None, ""):
        data = f"sent with Upload-Metadata {meta!r}".encode()
        path = await tus.created(len(data), meta)
        asset_id_of(await tus.patched(path, data, 0), data)


@pytest.mark.parametrize("value", [None, "", "-1", "abc", "1e3", "+5", "0x10", "2.5",
                                   "1, 2"],
                         ids=["missing", "empty", "negative", "text", "exponent", "plus",
                              "hex", "decimal", "list"])
async def test_a_missing_or_malformed_length_is_400(tus, settings, value):
    before = tmp_files(settings)
    headers = {} if value is None else {"Upload-Length": value}
    r = await tus.create(None, headers=headers)
    error_of(r, 400)
    assert "location" not in r.headers
    assert tmp_files(settings) == before


@pytest.mark.parametrize("value", ["1", "0", "yes"])
async def test_a_deferred_length_is_400(tus, value):
    r = await tus.create(None, headers={"Upload-Defer-Length": value})
    error_of(r, 400)
    assert "location" not in r.headers


async def test_a_length_over_the_limit_is_413(make_app, settings):
    small = configured(settings, max_upload_bytes=1000)
    async with core(make_app, small) as (_, http):
        tus = Tus(http)
        r = await tus.create(1001)
        error = error_of(r, 413, "payload_too_large")
        assert "1000" in error["message"]
        assert "location" not in r.headers
        r = await tus.create(10**30)
        error_of(r, 413, "payload_too_large")
        # exactly the limit is fine
        path = await tus.created(1000)
        asset_id_of(await tus.patched(path, b"x" * 1000, 0), b"x" * 1000)


async def test_a_zero_length_upload_is_an_asset_at_once(tus, client):
    r = await tus.create(0, metadata(filename="empty.dat"))
    assert r.status_code == 201, r.text
    asset_id_of(r, b"")
    path = upload_path(r.headers["location"])
    head = await tus.head(path)
    assert offset_of(head) == 0 and head.headers["upload-length"] == "0"
    asset = (await client.get(f"/v1/assets/{sha(b'')}")).json()
    assert asset["size"] == 0 and asset["filename"] == "empty.dat"


# -- metadata: what it may say -----------------------------------------------------------

async def finished(tus: Tus, data: bytes, meta: str) -> dict:
    """Upload ``data`` with ``meta``; the asset it became."""
    path = await tus.created(len(data), meta)
    asset_id = asset_id_of(await tus.patched(path, data, 0), data)
    r = await tus.http.get(f"/v1/assets/{asset_id}")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("key", ["filename", "name"])
async def test_the_file_name_is_filename_or_name(tus, key):
    asset = await finished(tus, DATA, metadata(**{key: "Résumé 2024.txt"}))
    assert asset["filename"] == "Résumé 2024.txt"
    assert asset["mime_type"] == "text/plain"


@pytest.mark.parametrize("key", ["filetype", "type"])
async def test_the_declared_type_is_filetype_or_type(tus, key):
    # bytes nothing recognises, a name without extension: the declared type decides
    asset = await finished(tus, b"\x01\x02 opaque", metadata(filename="blob", **{key: "text/csv"}))
    assert asset["mime_type"] == "text/csv"


async def test_kind_role_meta_and_links(tus, client):
    ada = await make_entity(client, "Ada")
    asset = await finished(tus, PNG, metadata(
        filename="face.png", kind="image.reference", entity_id=ada, role="portrait",
        meta=json.dumps({"source": "camera", "rating": 5})))
    assert asset["kind"] == "image.reference"
    assert asset["mime_type"] == "image/png"
    assert asset["user_metadata"] == {"source": "camera", "rating": 5}
    assert asset["linked_entity_ids"] == [ada]
    links = (await client.get(f"/v1/entities/{ada}/assets")).json()["items"]
    assert [(a["asset_id"], a["role"]) for a in links] == [(sha(PNG), "portrait")]


async def test_several_entities_separated_by_commas(tus, client):
    ada = await make_entity(client, "Ada")
    bob = await make_entity(client, "Bob")
    asset = await finished(tus, DATA, metadata(filename="shared.txt", entity_id=f"{ada},{bob}"))
    assert sorted(asset["linked_entity_ids"]) == sorted([ada, bob])
    for entity in (ada, bob):
        links = (await client.get(f"/v1/entities/{entity}/assets")).json()["items"]
        assert [a["asset_id"] for a in links] == [sha(DATA)]


async def test_derived_from_an_asset(tus, client):
    source = await uploaded(client, PNG, "source.png")
    asset = await finished(tus, DATA, metadata(filename="derived.txt",
                                               derived_from_asset_id=source["asset_id"]))
    assert asset["derived_from_asset_id"] == source["asset_id"]


async def test_a_value_less_key_is_accepted(tus):
    # tus allows ``key`` alone (an empty value); keys Core does not use are ignored
    path = await tus.created(len(DATA), f"filename {b64('x.txt')},is_confidential")
    asset_id_of(await tus.patched(path, DATA, 0), DATA)


# -- metadata: what is refused before any bytes ------------------------------------------

async def refused(tus: Tus, store: Store, settings, meta: str, status: int,
                  code: str | None = None) -> dict:
    """The creation is an error envelope and nothing was made: no upload, no file, no row."""
    before, files = await store.snapshot(), tmp_files(settings)
    r = await tus.create(len(DATA), meta)
    error = error_of(r, status, code)
    assert "location" not in r.headers
    assert tmp_files(settings) == files
    await store.assert_nothing_left(before)
    return error


@pytest.mark.parametrize("meta", [
    "filename not*base64!",
    f"filename {b64('a')[:-1]}",          # cut short: bad padding
    "filename " + b64(b"\xff\xfe name"),  # not UTF-8
    f" {b64('x')}",                       # empty key
    f"filename {b64('a')} {b64('b')}",    # three parts
    f"filename {b64('a')},filename {b64('b')}",  # a key twice
    f"file name {b64('a')}",              # a space in the key
], ids=["not-base64", "bad-padding", "not-utf8", "empty-key", "three-parts", "duplicate-key",
        "space-in-key"])
async def test_malformed_metadata_is_400(tus, store, settings, meta):
    await refused(tus, store, settings, meta, 400)


async def test_a_bad_kind_is_422(tus, store, settings):
    error = await refused(tus, store, settings, metadata(kind="Not A Kind"), 422,
                          "validation_error")
    assert "kind" in error["message"]


@pytest.mark.parametrize("meta", ["{not json", "[1, 2]", '"text"', "42", "null"],
                         ids=["not-json", "array", "string", "number", "null"])
async def test_meta_that_is_not_a_json_object_is_422(tus, store, settings, meta):
    await refused(tus, store, settings, metadata(meta=meta), 422, "validation_error")


async def test_an_unknown_entity_is_404(tus, client, store, settings):
    ada = await make_entity(client)
    error = await refused(tus, store, settings, metadata(entity_id=f"{ada},{UNKNOWN_ID}"),
                          404, "entity_not_found")
    assert UNKNOWN_ID in error["message"]
    error = await refused(tus, store, settings, metadata(entity_id=UNKNOWN_ID), 404,
                          "entity_not_found")


async def test_a_malformed_entity_id_is_refused(tus, store, settings):
    await refused(tus, store, settings, metadata(entity_id="not-an-id"), 422,
                  "validation_error")


async def test_a_role_without_an_entity_is_422(tus, store, settings):
    await refused(tus, store, settings, metadata(role="portrait"), 422, "validation_error")


async def test_derived_from_an_unknown_asset_is_404(tus, store, settings):
    await refused(tus, store, settings, metadata(derived_from_asset_id=UNKNOWN_ID), 404,
                  "asset_not_found")


# -- creation-with-upload ----------------------------------------------------------------

async def test_a_body_with_the_creation_is_appended(tus, client):
    r = await tus.create(len(DATA), metadata(filename="a.txt"), body=DATA[:500])
    assert r.status_code == 201, r.text
    assert offset_of(r) == 500
    assert "faceforge-asset-id" not in r.headers
    path = upload_path(r.headers["location"])
    assert await tus.offset(path) == 500
    asset_id = asset_id_of(await tus.patched(path, DATA[500:], 500), DATA)
    assert (await client.get(f"/v1/assets/{asset_id}/download")).content == DATA


async def test_a_whole_file_in_the_creation_is_an_asset_at_once(tus, client):
    r = await tus.create(len(PNG), metadata(filename="dot.png"), body=PNG)
    assert r.status_code == 201, r.text
    assert offset_of(r) == len(PNG)
    asset_id_of(r, PNG)
    asset = (await client.get(f"/v1/assets/{sha(PNG)}")).json()
    assert asset["filename"] == "dot.png" and asset["kind"] == "image.original"
    path = upload_path(r.headers["location"])
    assert (await tus.status(path))["asset_id"] == sha(PNG)


async def test_a_creation_body_longer_than_the_length_is_413(tus, store):
    before = await store.snapshot()
    r = await tus.create(10, body=b"x" * 11)
    error_of(r, 413)
    await store.assert_nothing_left(before)


async def test_bad_metadata_with_a_body_is_refused_before_the_body(tus, store, settings):
    before, files = await store.snapshot(), tmp_files(settings)
    r = await tus.create(len(DATA), metadata(kind="Not A Kind"), body=DATA)
    error_of(r, 422, "validation_error")
    assert tmp_files(settings) == files
    await store.assert_nothing_left(before)
