"""``POST /v1/assets/upload`` when it works: the record, the blob on disk, the form fields
(and their query-string twins), content sniffing, file names, the asset-ingested hook."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from ff_plugin_sdk import hookimpl
from tests.conftest import running
from tests.kernel.conftest import eventually
from tests.plugins_builtin.assets.conftest import (
    PNG,
    RFC3339_UTC,
    UPLOAD,
    make_entity,
    multipart,
    part,
    raw_upload,
    sha,
    upload,
    uploaded,
)

# -- the record --------------------------------------------------------------------------

async def test_upload_answers_201_with_the_whole_record(client, store):
    data = b"The Analytical Engine weaves algebraic patterns.\n"
    before = datetime.now(UTC)
    r = await upload(client, data, "engine.txt", content_type="text/plain")
    assert r.status_code == 201, r.text
    asset = r.json()
    assert asset["asset_id"] == asset["content_hash"] == sha(data)
    assert r.headers["etag"] == '"1"' and asset["version"] == 1
    assert asset["deduplicated"] is False
    assert asset["filename"] == "engine.txt"
    assert asset["size"] == asset["size_bytes"] == len(data)
    assert asset["mime_type"] == "text/plain"
    assert asset["kind"] == "doc.text"
    assert asset["provider"] == "fs"
    assert asset["storage"] == {"provider": "fs", "bucket": None, "key": sha(data)}
    assert asset["owner"] == {"type": "system", "id": None}
    assert asset["linked_entity_ids"] == []
    assert asset["derived_from_asset_id"] is None
    assert asset["user_metadata"] == {} and asset["extracted_metadata"] == {}
    assert asset["plugin_data"] == {}
    assert asset["deleted_at"] is None and asset["blob_present"] is True
    for stamp in (asset["created_at"], asset["updated_at"]):
        assert RFC3339_UTC.match(stamp), stamp
        assert before <= datetime.fromisoformat(stamp) <= datetime.now(UTC)
    got = await client.get(f"/v1/assets/{asset['asset_id']}")
    assert got.status_code == 200
    assert got.json() == {k: v for k, v in asset.items() if k != "deduplicated"}


async def test_the_blob_is_stored_by_its_hash_with_the_exact_bytes_owner_only(client, store,
                                                                              settings):
    data = bytes(range(256)) * 4096 + b"tail"  # > 1 MiB: more than one write
    asset = await uploaded(client, data, "weights.bin")
    blob = store.blob_path(asset["asset_id"])
    assert blob.read_bytes() == data
    assert blob.relative_to(settings.paths.assets_dir).parts == (
        sha(data)[:2], sha(data)[2:4], sha(data))
    for folder in (settings.paths.assets_dir, blob.parent.parent, blob.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert store.staged() == frozenset()


async def test_a_zero_byte_file_is_an_asset(client, store):
    asset = await uploaded(client, b"", "empty.dat")
    assert asset["asset_id"] == sha(b"")
    assert asset["size"] == 0 and asset["mime_type"] == "application/octet-stream"
    assert store.blob_path(sha(b"")).read_bytes() == b""
    download = await client.get(f"/v1/assets/{asset['asset_id']}/download")
    assert download.status_code == 200 and download.content == b""


# -- MIME type and default kind ----------------------------------------------------------

@pytest.mark.parametrize(("data", "filename", "declared", "mime", "kind"), [
    # content wins over the name and over what the client said
    (PNG, "not-an-image.txt", "text/plain", "image/png", "image.original"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "paper", "application/octet-stream",
     "application/pdf", "doc.pdf"),
    # no magic number: the extension
    (b"name,born\nAda,1815\n", "people.csv", "application/octet-stream", "text/csv",
     "doc.text"),
    (b"\x00" * 64, "style.safetensors", "application/octet-stream",
     "application/octet-stream", "model.lora"),
    # neither: what the client declared, then generic
    (b"\x01\x02\x03", "blob", "audio/x-custom", "audio/x-custom", "audio.clip"),
    (b"\x01\x02\x04", "blob", "application/octet-stream", "application/octet-stream", "file"),
], ids=["png-named-txt", "pdf-no-extension", "csv", "safetensors", "declared", "generic"])
async def test_mime_type_is_sniffed_from_content_then_name(client, data, filename, declared,
                                                           mime, kind):
    asset = await uploaded(client, data, filename, content_type=declared)
    assert (asset["mime_type"], asset["kind"]) == (mime, kind)


# -- form fields and their query-string twins ---------------------------------------------

async def test_kind_as_a_form_field_or_in_the_query(client):
    as_field = await uploaded(client, b"lora one", "a.bin", fields={"kind": "model.lora"})
    as_query = await uploaded(client, b"lora two", "b.bin", params={"kind": "model.lora"})
    assert as_field["kind"] == as_query["kind"] == "model.lora"
    # both: the form wins
    both = await uploaded(client, b"lora three", "c.bin", fields={"kind": "image.thumbnail"},
                          params={"kind": "model.lora"})
    assert both["kind"] == "image.thumbnail"


async def test_meta_as_text_is_merged_into_user_metadata(client):
    asset = await uploaded(client, b"with meta", "m.bin",
                           fields={"meta": '{"prompt": "a castle", "seed": 42}'})
    assert asset["user_metadata"] == {"prompt": "a castle", "seed": 42}


async def test_meta_as_a_file_part_is_merged_into_user_metadata(client):
    asset = await uploaded(client, PNG, "photo.png",
                           meta_file='{"caption": "ünïcode ✓", "tags": ["a", "b"]}'.encode())
    assert asset["user_metadata"] == {"caption": "ünïcode ✓", "tags": ["a", "b"]}


async def test_blank_meta_is_no_metadata(client):
    asset = await uploaded(client, b"blank meta", "m.bin", fields={"meta": "  "})
    assert asset["user_metadata"] == {}


async def test_entity_ids_link_on_upload_from_the_form_and_the_query(client):
    ada, bob, cy = [await make_entity(client, n) for n in ("Ada", "Bob", "Cy")]
    asset = await uploaded(client, b"linked", "l.bin", fields={"entity_id": [ada, bob]},
                           params={"entity_id": [cy, ada]})
    assert sorted(asset["linked_entity_ids"]) == sorted([ada, bob, cy])
    # the first entity named owns it
    assert asset["owner"]["type"] == "entity"
    assert asset["owner"]["id"] in {ada, cy}
    for entity_id in (ada, bob, cy):
        r = await client.get(f"/v1/entities/{entity_id}/assets")
        assert [a["asset_id"] for a in r.json()["items"]] == [asset["asset_id"]]


async def test_role_is_given_to_every_link_made_on_upload(client):
    ada = await make_entity(client)
    asset = await uploaded(client, b"role", "r.bin",
                           fields={"entity_id": ada, "role": "reference photo"})
    r = await client.get(f"/v1/entities/{ada}/assets")
    [item] = r.json()["items"]
    assert item["asset_id"] == asset["asset_id"] and item["role"] == "reference photo"
    by_query = await uploaded(client, b"role q", "q.bin",
                              params={"entity_id": ada, "role": "training"})
    r = await client.get(f"/v1/entities/{ada}/assets")
    roles = {a["asset_id"]: a["role"] for a in r.json()["items"]}
    assert roles[by_query["asset_id"]] == "training"


async def test_derived_from_asset_id_in_the_form_or_query(client):
    source = await uploaded(client, PNG, "source.png")
    thumb = await uploaded(client, b"thumb-1", "t1.webp", fields={
        "derived_from_asset_id": source["asset_id"], "kind": "image.thumbnail"})
    other = await uploaded(client, b"thumb-2", "t2.webp",
                           params={"derived_from_asset_id": source["asset_id"]})
    assert thumb["derived_from_asset_id"] == other["derived_from_asset_id"] == source["asset_id"]
    r = await client.get(f"/v1/assets/{source['asset_id']}/derived")
    assert {a["asset_id"] for a in r.json()["items"]} == {thumb["asset_id"], other["asset_id"]}


# -- file names --------------------------------------------------------------------------

@pytest.mark.parametrize(("sent", "kept"), [
    ("Café crème.jpg", "Café crème.jpg"),
    ("写真 2024.png", "写真 2024.png"),
    ("🦄 unicorn.gif", "🦄 unicorn.gif"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\ada\\Desktop\\portrait.png", "portrait.png"),
    ("/absolute/path/a.txt", "a.txt"),
], ids=["accents", "cjk", "emoji", "dot-dot", "windows-path", "absolute"])
async def test_filenames_are_kept_as_sent_without_any_path(client, sent, kept):
    asset = await uploaded(client, f"bytes of {sent}".encode(), sent)
    assert asset["filename"] == kept


@pytest.mark.parametrize(("sent", "kept"), [
    (b'say \\"hi\\".txt', 'say "hi".txt'),
    (b"tab\there\x7f.txt", "tabhere.txt"),
    (b"..\\..\\boot.ini", "boot.ini"),
], ids=["escaped-quotes", "control-characters", "backslashes"])
async def test_filenames_sent_by_hand(client, sent, kept):
    body = multipart([b'Content-Disposition: form-data; name="file"; filename="' + sent
                      + b'"\r\n\r\n' + sent])
    r = await raw_upload(client, body)
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == kept


@pytest.mark.parametrize(("sent", "kept", "kind"), [
    ("a" * 300 + ".png", "a" * 251 + ".png", "image.original"),
    ("写" * 300 + ".safetensors", "写" * 243 + ".safetensors", "model.lora"),
    ("b" * 300, "b" * 255, "file"),
    ("c" * 280 + ".not-an-extension-at-all", ("c" * 280 + ".not-an-extension-at-all")[:255],
     "file"),
], ids=["ascii", "cjk", "no-extension", "long-suffix"])
async def test_a_long_filename_is_shortened_keeping_its_extension(client, sent, kept, kind):
    asset = await uploaded(client, sent.encode(), sent)
    assert asset["filename"] == kept and len(kept) == 255
    assert asset["kind"] == kind  # the kind the whole name gives


@pytest.mark.parametrize("sent", ["", "..", ".", "../..", "dir/"])
async def test_a_filename_without_a_name_in_it_becomes_upload(client, sent):
    asset = await uploaded(client, f"nameless {sent!r}".encode(), sent)
    assert asset["filename"] == "upload"


async def test_filename_star_wins_over_filename(client):
    name = "résumé 履歴書 🦄.pdf"
    disposition = (f'form-data; name="file"; filename="resume.pdf"; '
                   f"filename*=UTF-8''{quote(name)}")
    r = await raw_upload(client, multipart([part("file", b"%PDF-1.4 star", disposition=disposition,
                                                 content_type="application/pdf")]))
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == name


async def test_filename_star_with_a_language_tag(client):
    disposition = "form-data; name=\"file\"; filename*=UTF-8'fr'%C3%A9t%C3%A9.txt"
    r = await raw_upload(client, multipart([part("file", b"summer", disposition=disposition)]))
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "été.txt"


async def test_a_filename_star_that_does_not_decode_falls_back_to_filename(client):
    disposition = "form-data; name=\"file\"; filename=\"plain.txt\"; filename*=UTF-8''%FF%FE"
    r = await raw_upload(client, multipart([part("file", b"fallback", disposition=disposition)]))
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "plain.txt"


async def test_a_raw_non_utf8_filename_is_not_an_error(client):
    body = multipart([b'Content-Disposition: form-data; name="file"; filename="caf\xe9.txt"'
                      b"\r\n\r\nlatin-1 name"])
    r = await raw_upload(client, body)
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "caf\ufffd.txt"


# -- the asset-ingested hook --------------------------------------------------------------

class IngestRecorder:
    """Records each ``faceforge_asset_ingested`` call and whether the row was committed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    @hookimpl
    async def faceforge_asset_ingested(self, kernel, asset):
        row = await kernel.db.fetchone("SELECT 1 FROM assets WHERE asset_id = ?",
                                       (asset["asset_id"],))
        self.calls.append((asset["asset_id"], row is not None))


async def test_the_ingested_hook_fires_once_per_new_asset_after_commit(make_app, settings):
    recorder = IngestRecorder()
    app = make_app(extra_plugins=[("ingest_recorder", recorder)])
    async with running(app, settings.install_token) as client:
        first = await uploaded(client, PNG, "one.png")
        second = await uploaded(client, b"second file", "two.txt")
        await eventually(lambda: len(recorder.calls) == 2, what="two ingested calls")
        again = await uploaded(client, PNG, "one-again.png", status=200)
        assert again["deduplicated"] is True
        # a third upload of new bytes: its call proves the dedupe's (if any) had its chance
        third = await uploaded(client, b"third file", "three.txt")
        await eventually(lambda: len(recorder.calls) == 3, what="the third ingested call")
        r = await client.post(UPLOAD, files={"file": ("x", b"")}, data={"kind": "Bad Kind"})
        assert r.status_code == 422
    assert sorted(recorder.calls) == sorted(
        (a["asset_id"], True) for a in (first, second, third))
