"""tus 1.0 core protocol under ``/v1/uploads``: OPTIONS, the ``Tus-Resumable`` rule, auth,
HEAD, PATCH (offsets, content type, length) and termination (DELETE)."""

from __future__ import annotations

import hashlib
import itertools

import httpx
import pytest

from tests.kernel.conftest import anonymous
from tests.plugins_builtin.assets.conftest import error_of
from tests.plugins_builtin.assets.tus import (
    ALGORITHMS,
    EXTENSIONS,
    OCTETS,
    TUS,
    UPLOADS,
    VERSION,
    Tus,
    asset_id_of,
    configured,
    core,
    expires,
    metadata,
    offset_of,
    tmp_files,
    upload_id,
)
from tests.ui.browsing import sign_in

DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def tus(client: httpx.AsyncClient) -> Tus:
    return Tus(client)


# -- OPTIONS -----------------------------------------------------------------------------

async def test_options_advertises_the_server_without_auth(anon):
    r = await Tus(anon).options()
    assert r.status_code == 204, r.text
    assert r.headers["tus-version"] == VERSION
    assert set(r.headers["tus-extension"].split(",")) == EXTENSIONS
    assert r.headers["tus-max-size"] == str(1024**4)  # max_upload_bytes' default, 1 TiB
    assert set(r.headers["tus-checksum-algorithm"].split(",")) == ALGORITHMS


async def test_options_max_size_follows_the_configured_limit(make_app, settings):
    async with core(make_app, configured(settings, max_upload_bytes=4321)) as (_, http):
        r = await Tus(http).options()
    assert r.status_code == 204
    assert r.headers["tus-max-size"] == "4321"


async def test_options_ignores_a_tus_resumable_header(anon):
    # a client should not send it with OPTIONS; a server must ignore it, whatever its value
    r = await Tus(anon).options(headers={"Tus-Resumable": "0.2.2"})
    assert r.status_code == 204
    assert r.headers["tus-version"] == VERSION


# -- Tus-Resumable -----------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, "0.2.2", "1.0", "", "1.0.0, 0.2.2"],
                         ids=["missing", "old", "short", "empty", "list"])
async def test_a_request_without_tus_resumable_1_0_0_is_412_and_not_processed(tus, client,
                                                                              value):
    sent = {} if value is None else {"Tus-Resumable": value}
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:100], 0)

    r = await client.post(UPLOADS, headers={**sent, "Upload-Length": "10"})
    error_of(r, 412)
    assert r.headers["tus-version"] == VERSION
    assert r.headers["tus-resumable"] == VERSION
    assert "location" not in r.headers

    r = await client.patch(path, content=DATA[100:200],
                           headers={**sent, "Upload-Offset": "100", "Content-Type": OCTETS})
    error_of(r, 412)
    assert r.headers["tus-version"] == VERSION and r.headers["tus-resumable"] == VERSION

    r = await client.head(path, headers=sent)
    assert r.status_code == 412 and r.content == b""
    assert r.headers["tus-version"] == VERSION and r.headers["tus-resumable"] == VERSION
    assert "upload-offset" not in r.headers

    r = await client.delete(path, headers=sent)
    error_of(r, 412)
    assert r.headers["tus-version"] == VERSION and r.headers["tus-resumable"] == VERSION

    # nothing of it was done: the upload is there, at the same offset
    assert await tus.offset(path) == 100


# -- auth --------------------------------------------------------------------------------

async def test_without_credentials_every_tus_request_is_401(tus, anon):
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:10], 0)
    nobody = Tus(anon)
    r = await nobody.create(10)
    error_of(r, 401, "unauthorized")
    r = await nobody.patch(path, DATA[10:20], 10)
    error_of(r, 401, "unauthorized")
    r = await nobody.head(path)
    assert r.status_code == 401 and "upload-offset" not in r.headers
    r = await nobody.delete(path)
    error_of(r, 401, "unauthorized")
    r = await anon.get(path)
    error_of(r, 401, "unauthorized")
    assert await tus.offset(path) == 10


async def test_a_wrong_token_is_401(tus, client):
    async with anonymous(client) as other:
        other.headers["Authorization"] = "Bearer not-the-token"
        r = await Tus(other).create(10)
    error_of(r, 401, "unauthorized")


async def test_a_ui_session_needs_the_csrf_header_to_write(tus, anon, settings):
    ui = await sign_in(anon, settings.install_token)
    session = Tus(ui.client)
    path = await tus.created(len(DATA))

    r = await session.create(10)
    error_of(r, 403, "csrf_failed")
    r = await session.patch(path, DATA[:10], 0)
    error_of(r, 403, "csrf_failed")
    r = await session.delete(path)
    error_of(r, 403, "csrf_failed")
    assert await tus.offset(path) == 0

    csrf = {"X-CSRF-Token": ui.csrf}
    r = await session.create(len(DATA), headers=csrf)
    assert r.status_code == 201, r.text
    r = await session.patch(path, DATA, 0, headers=csrf)
    assert r.status_code == 204, r.text
    asset_id_of(r, DATA)
    # reading needs no CSRF token, as everywhere in the API
    r = await session.head(path)
    assert r.status_code == 200 and offset_of(r) == len(DATA)


# -- HEAD --------------------------------------------------------------------------------

async def test_head_reports_offset_length_metadata_uncached(tus):
    meta = metadata(filename="notes.txt", kind="doc.text")
    path = await tus.created(len(DATA), meta)
    for sent in (0, 1000, 4096):
        if sent:
            start = offset_of(await tus.head(path))
            await tus.patched(path, DATA[start:sent], start)
        r = await tus.head(path)
        assert r.status_code == 200
        assert offset_of(r) == sent
        assert r.headers["upload-length"] == str(len(DATA))
        assert r.headers["upload-metadata"] == meta
        assert r.headers["cache-control"] == "no-store"
        expires(r)
        assert "faceforge-asset-id" not in r.headers


async def test_head_of_a_finished_upload_names_the_asset(tus):
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA, 0)
    r = await tus.head(path)
    assert r.status_code == 200
    assert offset_of(r) == len(DATA)
    assert r.headers["faceforge-asset-id"] == hashlib.sha256(DATA).hexdigest()
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("name", ["0" * 32, "not-an-upload", "A" * 32, "0" * 64])
async def test_an_unknown_upload_is_404(tus, name):
    path = f"{UPLOADS}/{name}"
    r = await tus.head(path)
    assert r.status_code == 404
    assert "upload-offset" not in r.headers
    error_of(await tus.patch(path, b"x", 0), 404)
    error_of(await tus.delete(path), 404)
    error_of(await tus.http.get(path), 404)


# -- PATCH -------------------------------------------------------------------------------

async def test_patch_in_several_chunks_builds_the_file(tus, client):
    path = await tus.created(len(DATA))
    cuts = [0, 1, 4096, 4097, 9000, len(DATA)]
    for start, end in itertools.pairwise(cuts):
        r = await tus.patched(path, DATA[start:end], start)
        expires(r)
        if end < len(DATA):
            assert "faceforge-asset-id" not in r.headers
    asset_id = asset_id_of(r, DATA)
    download = await client.get(f"/v1/assets/{asset_id}/download")
    assert download.status_code == 200 and download.content == DATA


@pytest.mark.parametrize("wrong", [0, 99, 101, 5000, len(DATA)])
async def test_a_wrong_offset_is_409_and_writes_nothing(tus, client, wrong):
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:100], 0)
    r = await tus.patch(path, b"\xff" * 50, wrong)
    error_of(r, 409, "offset_mismatch")
    assert await tus.offset(path) == 100
    r = await tus.patched(path, DATA[100:], 100)
    asset_id = asset_id_of(r, DATA)
    assert (await client.get(f"/v1/assets/{asset_id}/download")).content == DATA


@pytest.mark.parametrize("value", [None, "", "-1", "abc", "1e2", "0x10", "100.0"],
                         ids=["missing", "empty", "negative", "text", "exponent", "hex",
                              "decimal"])
async def test_a_missing_or_malformed_offset_is_400(tus, value):
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:100], 0)
    headers = {} if value is None else {"Upload-Offset": value}
    r = await tus.patch(path, b"\xff" * 10, None, headers=headers)
    error_of(r, 400)
    assert await tus.offset(path) == 100


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "text/plain",
                                          "application/offset+octet-stream-x"])
async def test_patch_with_another_content_type_is_415(tus, content_type):
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:100], 0)
    r = await tus.patch(path, DATA[100:200], 100, content_type=content_type)
    error_of(r, 415)
    assert await tus.offset(path) == 100


async def test_patch_past_the_length_is_413_and_the_upload_is_intact(tus, client):
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:1000], 0)
    for extra in (1, 64 * 1024):
        r = await tus.patch(path, DATA[1000:] + b"\0" * extra, 1000)
        error_of(r, 413)
        assert await tus.offset(path) == 1000
    r = await tus.patched(path, DATA[1000:], 1000)
    asset_id = asset_id_of(r, DATA)
    assert (await client.get(f"/v1/assets/{asset_id}/download")).content == DATA


async def test_an_empty_patch_changes_nothing(tus):
    path = await tus.created(len(DATA))
    r = await tus.patched(path, b"", 0)
    assert offset_of(r) == 0
    await tus.patched(path, DATA[:10], 0)
    r = await tus.patched(path, b"", 10)
    assert offset_of(r) == 10
    assert "faceforge-asset-id" not in r.headers
    assert await tus.offset(path) == 10


async def test_a_finished_upload_takes_no_more_bytes(tus, client):
    path = await tus.created(len(DATA))
    asset_id = asset_id_of(await tus.patched(path, DATA, 0), DATA)
    r = await tus.patch(path, b"more", len(DATA))
    error_of(r, r.status_code)
    assert 400 <= r.status_code < 500
    assert await tus.offset(path) == len(DATA)
    assert (await client.get(f"/v1/assets/{asset_id}/download")).content == DATA


# -- termination -------------------------------------------------------------------------

async def test_delete_terminates_an_upload_and_removes_its_bytes(tus, settings):
    before = tmp_files(settings)
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:5000], 0)
    assert tmp_files(settings) > before, "the received bytes are kept under tmp/"
    r = await tus.delete(path)
    assert r.status_code == 204 and r.content == b""
    assert tmp_files(settings) == before
    r = await tus.head(path)
    assert r.status_code == 404 and "upload-offset" not in r.headers
    error_of(await tus.patch(path, DATA[5000:], 5000), 404)
    error_of(await tus.http.get(path), 404)
    error_of(await tus.delete(path), 404)


async def test_deleting_a_finished_upload_keeps_its_asset(tus, client):
    path = await tus.created(len(DATA))
    asset_id = asset_id_of(await tus.patched(path, DATA, 0), DATA)
    r = await tus.delete(path)
    assert r.status_code in (204, 404), r.text
    got = await client.get(f"/v1/assets/{asset_id}")
    assert got.status_code == 200 and got.json()["deleted_at"] is None
    assert (await client.get(f"/v1/assets/{asset_id}/download")).content == DATA


async def test_upload_ids_are_fresh_for_each_creation(tus):
    ids = {upload_id(await tus.created(10)) for _ in range(20)}
    assert len(ids) == 20



async def test_a_streamed_body_past_the_length_is_413_and_the_upload_is_intact(tus, client):
    """Without a Content-Length (chunked transfer) the excess is only seen while reading."""
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:1000], 0)

    async def pieces():
        for start in range(1000, len(DATA), 4096):
            yield DATA[start:start + 4096]
        yield b"one byte too many"

    r = await tus.patch(path, pieces(), 1000)  # type: ignore[arg-type]
    error_of(r, 413)
    assert await tus.offset(path) == 1000
    asset_id = asset_id_of(await tus.patched(path, DATA[1000:], 1000), DATA)
    assert (await client.get(f"/v1/assets/{asset_id}/download")).content == DATA


@pytest.mark.parametrize("name", ["../../etc/passwd", "C:\\Users\\ada\\face.png", ".."])
async def test_a_file_name_is_never_a_path(tus, client, name):
    path = await tus.created(len(DATA), metadata(filename=name))
    asset_id = asset_id_of(await tus.patched(path, DATA, 0), DATA)
    filename = (await client.get(f"/v1/assets/{asset_id}")).json()["filename"]
    assert "/" not in filename and "\\" not in filename and filename.strip(".")


# -- X-HTTP-Method-Override (tus core: for clients that cannot send PATCH or DELETE) --------

async def test_a_post_overridden_as_patch_or_delete_is_one(tus, client):
    path = await tus.created(len(DATA))
    r = await tus.http.post(path, content=DATA[:100], headers={
        **TUS, "X-HTTP-Method-Override": "PATCH", "Content-Type": OCTETS,
        "Upload-Offset": "0"})
    assert r.status_code == 204, r.text
    assert offset_of(r) == 100
    r = await tus.http.post(path, headers={**TUS, "X-HTTP-Method-Override": "DELETE"})
    assert r.status_code == 204, r.text
    assert (await tus.head(path)).status_code == 404
