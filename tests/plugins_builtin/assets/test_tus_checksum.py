"""tus checksum extension: ``Upload-Checksum`` of each PATCH's body — a match is accepted,
a mismatch is 460 and the bytes are discarded, an unknown algorithm or a malformed header is
400; in every refusal the offset stays where it was."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.plugins_builtin.assets.conftest import error_of
from tests.plugins_builtin.assets.tus import (
    ALGORITHMS,
    Tus,
    asset_id_of,
    b64,
    checksum,
)

DATA = os.urandom(200_000)
HALF = 100_000


@pytest.fixture
def tus(client: httpx.AsyncClient) -> Tus:
    return Tus(client)


async def finish(tus: Tus, client: httpx.AsyncClient, path: str, start: int) -> None:
    """Send the rest correctly: the asset holds exactly ``DATA``."""
    r = await tus.patched(path, DATA[start:], start,
                          headers={"Upload-Checksum": checksum("sha1", DATA[start:])})
    asset_id = asset_id_of(r, DATA)
    assert (await client.get(f"/v1/assets/{asset_id}/download")).content == DATA


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
async def test_a_matching_checksum_is_accepted(tus, client, algorithm):
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:HALF], 0,
                      headers={"Upload-Checksum": checksum(algorithm, DATA[:HALF])})
    assert await tus.offset(path) == HALF
    await finish(tus, client, path, HALF)


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
async def test_a_mismatch_is_460_and_the_bytes_are_discarded(tus, client, algorithm):
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:1000], 0)
    corrupted = bytearray(DATA[1000:HALF])
    corrupted[5000] ^= 0xFF
    r = await tus.patch(path, bytes(corrupted), 1000,
                        headers={"Upload-Checksum": checksum(algorithm, DATA[1000:HALF])})
    error_of(r, 460, "checksum_mismatch")
    assert await tus.offset(path) == 1000
    await finish(tus, client, path, 1000)


async def test_a_mismatch_on_the_last_chunk_makes_no_asset(tus, client):
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:HALF], 0)
    r = await tus.patch(path, DATA[HALF:-1] + b"\0", HALF,
                        headers={"Upload-Checksum": checksum("sha256", DATA[HALF:])})
    error_of(r, 460, "checksum_mismatch")
    assert "faceforge-asset-id" not in r.headers
    assert (await client.get("/v1/assets")).json()["items"] == []
    assert (await tus.status(path))["asset_id"] is None
    await finish(tus, client, path, HALF)


@pytest.mark.parametrize("algorithm", ["crc32", "sha512", "md4", "sha-1"])
async def test_an_unsupported_algorithm_is_400(tus, client, algorithm):
    path = await tus.created(len(DATA))
    r = await tus.patch(path, DATA[:HALF], 0,
                        headers={"Upload-Checksum": f"{algorithm} {b64(b'x' * 20)}"})
    error_of(r, 400, "unsupported_checksum")
    assert await tus.offset(path) == 0
    await finish(tus, client, path, 0)


@pytest.mark.parametrize("value", [
    "sha1", "sha1 ", "sha1 not*base64!", f"sha1 {b64(b'x' * 20)} extra",
    f"sha1:{b64(b'x' * 20)}",
], ids=["no-digest", "empty-digest", "not-base64", "three-parts",
        "colon"])
async def test_a_malformed_checksum_header_is_400(tus, client, value):
    path = await tus.created(len(DATA))
    r = await tus.patch(path, DATA[:HALF], 0, headers={"Upload-Checksum": value})
    error_of(r, 400)
    assert await tus.offset(path) == 0
    await finish(tus, client, path, 0)
