"""Downloading an asset's bytes, or a range of them, resuming after a dropped connection
with ``Range`` from the last byte received (``If-Range`` on the asset's entity tag, its
content hash: the bytes under an id never change)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx

from ff_plugin_sdk.client._plan import (
    READ,
    Call,
    Emit,
    Exchange,
    Feed,
    Plan,
    Retry,
    Sleep,
    Unreachable,
    consume,
    error_of,
    read_rest,
    seg,
    unreachable,
)
from ff_plugin_sdk.errors import FaceForgeError

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)|bytes \*/(\d+)")
#: bytes hashed per read when checking a partial file kept from an earlier try
_HASH_BYTES = 1024 * 1024


def _total(response: httpx.Response) -> tuple[int, int | None]:
    """(first byte, size of the whole) from a 206's ``Content-Range`` or a 200's length."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
    if response.status_code == 200:
        length = response.headers.get("content-length")
        return 0, int(length) if length and length.isdigit() else None
    if match is None or match.group(1) is None:
        raise FaceForgeError("a 206 answer without a usable Content-Range",
                             code="unexpected_response", status=502)
    return int(match.group(1)), int(match.group(3))


def _unsatisfied_size(response: httpx.Response) -> int | None:
    """The size a 416 reports (``Content-Range: bytes */size``)."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
    return int(match.group(4)) if match and match.group(4) else None


def ranged(asset_id: str, offset: int, length: int | None, retry: Retry) -> Feed[bytes]:
    """Bytes ``offset`` to ``offset + length`` (to the end when None) of the asset, as
    they arrive.  A drop (or a 502-504) resumes at the next byte; ``retry.retries``
    failures in a row without a byte received raise."""
    position = offset
    end = None if length is None else offset + length
    failures = 0
    while end is None or position < end:
        headers = {"Accept-Encoding": "identity", "If-Range": f'"{asset_id}"'}
        if position or end is not None:
            headers["Range"] = f"bytes={position}-{'' if end is None else end - 1}"
        call = Call("GET", f"/v1/assets/{seg(asset_id)}/download", headers=headers)
        problem: Exception
        try:
            response = yield Exchange(call, stream=True)
            if response.status_code == 416 and _unsatisfied_size(response) == position:
                return  # resumed exactly at the end (a partial file that was complete)
            if response.status_code not in (200, 206):
                problem = error_of(response, (yield from read_rest()))
                if response.status_code not in retry.statuses:
                    raise problem
            else:
                first, size = _total(response)
                if size is not None:
                    end = size if end is None else min(end, size)
                skip = position - first  # a 200 (Range ignored) starts at byte 0
                while end is None or position < end:
                    chunk = yield READ
                    if not chunk:
                        break
                    if skip:
                        chunk, skip = chunk[skip:], max(0, skip - len(chunk))
                    if end is not None:
                        chunk = chunk[:end - position]
                    if chunk:
                        failures = 0
                        position += len(chunk)
                        yield Emit(chunk)
                if end is None or position >= end:
                    return
                problem = Unreachable(f"the download of {asset_id} ended at byte {position}")
        except httpx.TransportError as exc:
            problem = unreachable(call, exc)
        failures += 1
        if failures > retry.retries:
            raise problem
        yield Sleep(retry.delay(failures - 1))


def to_file(asset_id: str, path: Path, offset: int, length: int | None, resume: bool,
            retry: Retry) -> Plan[Path]:
    """Write the bytes to ``path`` through ``<path>.part`` (kept after a failure, and
    continued from by the next call with ``resume``).  A whole download is checked
    against the asset id, its SHA-256: a mismatch removes the partial file and raises."""
    part = path.with_name(path.name + ".part")
    have = part.stat().st_size if resume and part.exists() else 0
    if length is not None:
        have = min(have, length)
    whole = offset == 0 and length is None
    digest = hashlib.sha256()
    if whole and have:
        with open(part, "rb") as fh:
            while data := fh.read(min(_HASH_BYTES, have - fh.tell())):
                digest.update(data)

    with open(part, "r+b" if have else "wb") as out:
        out.seek(have)
        out.truncate()

        def write(chunk: bytes) -> None:
            out.write(chunk)
            if whole:
                digest.update(chunk)

        yield from consume(ranged(asset_id, offset + have,
                                  None if length is None else length - have, retry), write)
    if whole and digest.hexdigest() != asset_id:
        part.unlink(missing_ok=True)
        raise FaceForgeError(f"the bytes downloaded for asset {asset_id} hash to "
                             f"{digest.hexdigest()}: not the asset (removed {part})",
                             code="download_corrupt", status=502)
    part.replace(path)
    return path
