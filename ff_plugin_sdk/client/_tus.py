"""A resumable upload over tus 1.0 (``/v1/uploads``): create, send chunks, and after any
failure ask Core where it stands (``HEAD``) and go on from there."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping

import httpx

from ff_plugin_sdk.client._body import Body, Sliceable
from ff_plugin_sdk.client._plan import (
    Call,
    Exchange,
    Plan,
    Retry,
    Sleep,
    error_of,
    request,
    unreachable,
)

VERSION = {"Tus-Resumable": "1.0.0"}
CHUNK_TYPE = "application/offset+octet-stream"
#: what a resumable upload sends per request unless told otherwise
DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """``Upload-Metadata``: ``key base64(value)`` pairs."""
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}"
                    for key, value in metadata.items())


def offset_now(url: str, retry: Retry) -> Plan[int]:
    """Where the upload at ``url`` stands (``NotFound`` once it expired or was removed)."""
    response = yield from request(Call("HEAD", url, headers=VERSION), retry)
    return int(response.headers["upload-offset"])


def create(length: int, metadata: Mapping[str, str], retry: Retry) -> Plan[httpx.Response]:
    return request(Call("POST", "/v1/uploads", headers={
        **VERSION, "Upload-Length": str(length),
        "Upload-Metadata": encode_metadata(metadata)}), retry)


def send(body: Sliceable, url: str, offset: int, chunk_bytes: int,
         retry: Retry) -> Plan[httpx.Response]:
    """Send the rest of ``body`` from ``offset``, chunk after chunk; the answer to the last
    chunk.  After a failure (a dropped connection, a 502-504, an offset Core disagrees
    with) it waits, asks Core for its offset and resumes there; ``retry.retries`` failures
    in a row without progress raise."""
    length = body.length or 0
    failures = 0
    while True:
        size = min(chunk_bytes, length - offset)
        call = Call("PATCH", url, content=body.part(offset, size), headers={
            **VERSION, "Upload-Offset": str(offset), "Content-Type": CHUNK_TYPE})
        problem: Exception
        try:
            response = yield Exchange(call)
        except httpx.TransportError as exc:
            problem = unreachable(call, exc)
        else:
            if response.status_code == 204:
                failures = 0
                offset = int(response.headers["upload-offset"])
                if offset >= length:
                    return response
                continue
            problem = error_of(response)
            if response.status_code != 409 and response.status_code not in retry.statuses:
                raise problem
        failures += 1
        if failures > retry.retries:
            raise problem
        yield Sleep(retry.delay(failures - 1))
        offset = yield from offset_now(url, retry)


def upload(body: Body, metadata: Mapping[str, str], chunk_bytes: int, retry: Retry,
           url: str | None, on_created: Callable[[str], None] | None) -> Plan[tuple[str, bool]]:
    """(asset id, deduplicated) once ``body`` is stored: a new upload, or the one at
    ``url`` resumed from where Core has it."""
    if not (isinstance(body, Sliceable) and body.replayable and body.length is not None):
        raise TypeError("a resumable upload needs a file path, bytes or a seekable binary "
                        "file (its length known, its chunks re-readable)")
    response = None
    if url is None:
        response = yield from create(body.length, metadata, retry)
        url = response.headers["location"]
        if on_created is not None:
            on_created(url)
        offset = 0
    else:
        offset = yield from offset_now(url, retry)
    if body.length > offset:
        response = yield from send(body, url, offset, chunk_bytes, retry)
    if response is None or "faceforge-asset-id" not in response.headers:
        response = yield from request(Call("HEAD", url, headers=VERSION), retry)
    return (response.headers["faceforge-asset-id"],
            response.headers.get("faceforge-deduplicated") == "true")
