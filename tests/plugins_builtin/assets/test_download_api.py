"""``GET|HEAD /v1/assets/{id}/download`` as the API serves it: the uploaded bytes, the asset's
validators and name, and the 404s of deleted assets and lost blobs.  (The response's HTTP
semantics in depth: ``test_download_response.py``.)"""

from __future__ import annotations

import os
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from tests.plugins_builtin.assets.conftest import PNG, error_of, sha, uploaded

MiB = 1024 * 1024


async def test_download_gives_back_the_uploaded_bytes_with_the_assets_validators(client):
    data = os.urandom(3 * MiB + 17)  # several 1 MiB chunks and a short one
    asset = await uploaded(client, data, "weights.bin")
    url = f"/v1/assets/{asset['asset_id']}/download"
    r = await client.get(url)
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["etag"] == f'"{sha(data)}"'
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-disposition"].startswith('attachment; filename="weights.bin"')
    stored = parsedate_to_datetime(r.headers["last-modified"])
    created = asset["created_at"]
    assert stored.strftime("%Y-%m-%dT%H:%M:%S") == created[:19]
    cached = await client.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""


async def test_head_has_the_headers_and_no_body(client):
    asset = await uploaded(client, PNG, "pixel.png")
    url = f"/v1/assets/{asset['asset_id']}/download"
    get, head = await client.get(url), await client.head(url)
    assert head.status_code == 200 and head.content == b""
    for name in ("etag", "content-length", "content-type", "content-disposition",
                 "last-modified", "accept-ranges"):
        assert head.headers[name] == get.headers[name], name
    assert head.headers["content-type"] == "image/png"


async def test_a_range(client):
    data = bytes(range(256)) * 1000
    asset = await uploaded(client, data, "bytes.bin")
    url = f"/v1/assets/{asset['asset_id']}/download"
    r = await client.get(url, headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206
    assert r.content == data[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = await client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    beyond = await client.get(url, headers={"Range": f"bytes={len(data)}-"})
    error_of(beyond, 416)
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"


async def test_a_cjk_name_is_in_content_disposition(client):
    name = "写真 アルバム 😀.png"
    asset = await uploaded(client, PNG, name)
    url = f"/v1/assets/{asset['asset_id']}/download"
    disposition = (await client.get(url)).headers["content-disposition"]
    assert disposition.startswith("attachment; filename=\"")
    assert disposition.isascii()
    star = disposition.split("filename*=", 1)[1]
    assert star == "UTF-8''" + quote(name, safe="!#$&+^`|")
    assert unquote(star.removeprefix("UTF-8''")) == name
    inline = await client.get(url, params={"inline": "true"})
    assert inline.headers["content-disposition"].startswith("inline; ")


async def test_a_renamed_asset_downloads_under_its_new_name(client):
    asset = await uploaded(client, PNG, "old.png")
    await client.patch(f"/v1/assets/{asset['asset_id']}", json={"filename": "new name.png"})
    r = await client.get(f"/v1/assets/{asset['asset_id']}/download")
    assert 'filename="new name.png"' in r.headers["content-disposition"]


async def test_a_deleted_asset_is_404_before_and_after_its_bytes_are_collected(client, kernel,
                                                                              store):
    asset = await uploaded(client, b"soon gone", "gone.bin")
    url = f"/v1/assets/{asset['asset_id']}/download"
    await client.delete(f"/v1/assets/{asset['asset_id']}")
    error_of(await client.get(url), 404, "asset_not_found")
    assert (await client.head(url)).status_code == 404
    await kernel.services["assets.collector"].sweep()
    assert not store.blob_path(asset["asset_id"]).exists()
    error_of(await client.get(url), 404, "asset_not_found")
    # the same bytes again bring it back, bytes and all
    await uploaded(client, b"soon gone", "back.bin")
    r = await client.get(url)
    assert r.status_code == 200 and r.content == b"soon gone"


async def test_a_blob_removed_by_hand_is_404_blob_missing(client, store):
    asset = await uploaded(client, b"removed behind Core's back", "lost.bin")
    store.blob_path(asset["asset_id"]).unlink()
    url = f"/v1/assets/{asset['asset_id']}/download"
    error = error_of(await client.get(url), 404, "blob_missing")
    assert error["message"]
    error_of(await client.get(url, headers={"Range": "bytes=0-3"}), 404, "blob_missing")
    # the record itself is still there
    assert (await client.get(f"/v1/assets/{asset['asset_id']}")).status_code == 200
