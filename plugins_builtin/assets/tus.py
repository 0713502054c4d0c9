"""``/v1/uploads``: the tus 1.0 resumable upload protocol (https://tus.io/protocols/
resumable-upload), with the creation, creation-with-upload, termination, expiration and
checksum extensions — so tus clients (tuspy, tus-js-client, Uppy) work unchanged.

The protocol only: headers in, headers out.  State and bytes are
:class:`~plugins_builtin.assets.resumable.Uploads`; a finished upload becomes an asset
through the same ingest path as ``POST /v1/assets/upload``, and the last PATCH's answer
names it in ``FaceForge-Asset-Id``.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.responses import Response

from ff_plugin_sdk import PUBLIC, ApiRoute, BadRequest, PayloadTooLarge, PreconditionFailed
from ff_plugin_sdk.errors import FaceForgeError
from plugins_builtin.assets.api import UploadQuery, upload_request
from plugins_builtin.assets.ingest import Ingest
from plugins_builtin.assets.receive import clean_filename
from plugins_builtin.assets.resumable import Upload, Uploads, stamp

VERSION = "1.0.0"
#: on every answer, errors and the kernel's refusals included
TUS = {"Tus-Resumable": VERSION}
EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
CHECKSUMS = {"md5": 16, "sha1": 20, "sha256": 32}
CHUNK_TYPE = "application/offset+octet-stream"
_KEY = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Upload-Metadata keys, and the ingest field each one fills (Uppy sends name and type)
_FIELDS = {"kind": "kind", "entity_id": "entity_id", "role": "role", "meta": "meta",
           "derived_from_asset_id": "derived_from_asset_id"}
_SOURCE = "Upload-Metadata"


class UploadStatus(msgspec.Struct, kw_only=True):
    upload_id: str
    offset: int
    length: int
    metadata: dict[str, str]
    created_at: str
    expires_at: str
    #: the asset the finished upload became (null until then)
    asset_id: str | None
    deduplicated: bool


def require_version(request: Any) -> None:
    given = request.headers.get("tus-resumable")
    if given != VERSION:
        raise PreconditionFailed(
            f"this server speaks tus {VERSION}; send 'Tus-Resumable: {VERSION}'"
            + (f" (got {given[:40]!r})" if given else ""), code="tus_version",
            headers={"Tus-Version": VERSION})


def number(request: Any, header: str) -> int:
    text = request.headers.get(header)
    if text is None:
        raise BadRequest(f"the {header} header is required", code="missing_header")
    # any length of digits is a number (a huge length is 413, a huge offset 409), but a
    # header of hundreds of digits is not worth converting
    if not (text.isascii() and text.isdigit()) or len(text) > 100:
        raise BadRequest(f"{header} must be a whole number of bytes, got {text[:40]!r}",
                         code="invalid_header")
    return int(text)


def parse_metadata(text: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs; values are UTF-8."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, encoded = item.partition(" ")
        if not _KEY.match(key) or " " in encoded.strip():
            raise BadRequest(f"Upload-Metadata: {item[:60]!r} is not 'key base64value'",
                             code="invalid_upload_metadata")
        if key in pairs:
            raise BadRequest(f"Upload-Metadata: {key!r} given twice",
                             code="invalid_upload_metadata")
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 "
                             f"text", code="invalid_upload_metadata") from None
    return pairs


def ingest_request(metadata: dict[str, str]) -> Any:
    """The ingest request the metadata asks for (checked as a form upload is)."""
    fields: dict[str, list[str]] = {}
    for key, field in _FIELDS.items():
        if key in metadata and metadata[key].strip():
            values = metadata[key].split(",") if key == "entity_id" else [metadata[key]]
            fields[field] = [v.strip() for v in values if v.strip()]
    filename = clean_filename(metadata.get("filename") or metadata.get("name") or "")
    declared = metadata.get("filetype") or metadata.get("type") or None
    return upload_request(UploadQuery(), fields, filename, declared, b"", source=_SOURCE)


def parse_checksum(request: Any) -> tuple[str, bytes] | None:
    text = request.headers.get("upload-checksum")
    if text is None:
        return None
    algorithm, _, encoded = text.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUMS:
        raise BadRequest(f"Upload-Checksum: {algorithm[:20]!r} is not supported; use one of "
                         f"{', '.join(CHECKSUMS)}", code="unsupported_checksum")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != CHECKSUMS[algorithm]:
        raise BadRequest(f"Upload-Checksum: not a base64 {algorithm} digest",
                         code="invalid_checksum")
    return algorithm, digest


def upload_headers(upload: Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.received),
               "Upload-Expires": email.utils.formatdate(upload.expires, usegmt=True),
               "Cache-Control": "no-store"}
    if upload.asset_id is not None:
        headers["FaceForge-Asset-Id"] = upload.asset_id
        headers["FaceForge-Deduplicated"] = "true" if upload.deduplicated else "false"
    return headers


def routes(uploads: Uploads, ingest: Ingest, max_upload_bytes: int) -> list[ApiRoute]:
    async def body(request: Any) -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if chunk:
                yield chunk

    async def write(request: Any, upload: Upload) -> None:
        """Append the request's body, finishing the upload on its last byte."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and upload.received + int(declared) > upload.length:
            raise PayloadTooLarge(
                f"this upload is {upload.length} bytes and {upload.received} are already "
                f"here: a {declared}-byte body does not fit")
        if upload.finished:
            async for _ in body(request):
                raise PayloadTooLarge(f"upload {upload.upload_id} is finished: it takes no "
                                      f"more bytes")
            return
        await uploads.append(upload, body(request), parse_checksum(request))
        if upload.received == upload.length:
            await uploads.finish(upload)

    async def options(request: Any) -> Response:
        """What this tus server supports (no credentials needed)."""
        return Response(status_code=204, headers={
            "Tus-Version": VERSION, "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(max_upload_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUMS)})

    async def create(request: Any) -> Response:
        """Start an upload: ``Upload-Length`` and ``Upload-Metadata`` (filename, filetype,
        kind, entity_id, role, meta, derived_from_asset_id); a body is appended at once."""
        require_version(request)
        if "upload-defer-length" in request.headers:
            raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length",
                             code="unsupported_defer_length")
        length = number(request, "upload-length")
        if length > max_upload_bytes:
            raise PayloadTooLarge(f"Upload-Length {length} is over this server's limit of "
                                  f"{max_upload_bytes} bytes (Tus-Max-Size)")
        raw = request.headers.get("upload-metadata", "")
        wanted = ingest_request(parse_metadata(raw))
        has_body = request.headers.get("content-length", "0") not in ("", "0") or (
            "transfer-encoding" in request.headers)
        if has_body and _media_type(request) != CHUNK_TYPE:
            raise BadRequest(f"a body sent with the creation must be {CHUNK_TYPE}",
                             code="unsupported_media_type", status=415)
        await ingest.check(wanted)
        upload = await uploads.create(length, raw, wanted)
        location = f"/v1/uploads/{upload.upload_id}"
        headers = {"Location": location}
        if has_body or length == 0:
            async with uploads.hold(upload.upload_id) as held:
                await write(request, held)
                headers |= upload_headers(held)
        else:
            headers |= upload_headers(upload)
            del headers["Upload-Offset"]
        return Response(status_code=201, headers=headers)

    async def status(request: Any) -> Response:
        """HEAD (tus): the offset to resume from.  GET: the upload as JSON."""
        upload_id = request.path_params["upload_id"]
        if request.method == "HEAD":
            require_version(request)
            # a writer still running (its client gone quiet) is stopped first, so the offset
            # told is the one to resume from
            async with uploads.hold(upload_id) as upload:
                headers = upload_headers(upload) | {"Upload-Length": str(upload.length)}
                if upload.metadata:
                    headers["Upload-Metadata"] = upload.metadata
                return Response(status_code=200, headers=headers)
        upload = await uploads.get(upload_id)
        body = UploadStatus(
            upload_id=upload.upload_id, offset=upload.received, length=upload.length,
            metadata=parse_metadata(upload.metadata), created_at=upload.created_at,
            expires_at=stamp(upload.expires), asset_id=upload.asset_id,
            deduplicated=upload.deduplicated)
        return Response(msgspec.json.encode(body), media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    async def patch(request: Any) -> Response:
        """Append bytes at ``Upload-Offset`` (``Upload-Checksum`` optional)."""
        require_version(request)
        if _media_type(request) != CHUNK_TYPE:
            raise BadRequest(f"PATCH bodies must be {CHUNK_TYPE}",
                             code="unsupported_media_type", status=415)
        offset = number(request, "upload-offset")
        async with uploads.hold(request.path_params["upload_id"]) as upload:
            if offset != upload.received:
                raise FaceForgeError(
                    f"Upload-Offset is {offset} but the upload has {upload.received} bytes: "
                    f"resume from {upload.received} (HEAD tells it)", code="offset_mismatch",
                    status=409, headers={"Upload-Offset": str(upload.received)})
            await write(request, upload)
            return Response(status_code=204, headers=upload_headers(upload))

    async def terminate(request: Any) -> Response:
        """Stop the upload and forget its bytes."""
        require_version(request)
        async with uploads.hold(request.path_params["upload_id"]) as upload:
            await uploads.terminate(upload)
        return Response(status_code=204)

    async def overridden(request: Any) -> Response:
        """``X-HTTP-Method-Override: PATCH|DELETE`` on a POST, for clients that cannot send
        those methods (tus core protocol)."""
        method = request.headers.get("x-http-method-override", "").strip().upper()
        if method == "PATCH":
            return await patch(request)
        if method == "DELETE":
            return await terminate(request)
        raise BadRequest("POST on an upload needs X-HTTP-Method-Override: PATCH or DELETE",
                         code="method_override_required", status=405)

    one = "/uploads/{upload_id}"
    tags = ["uploads"]
    write_scope = "assets:write"
    chunk_body = {"required": False, "content": {CHUNK_TYPE: {
        "schema": {"type": "string", "format": "binary"}}}}
    return [
        ApiRoute(path="/uploads", endpoint=options, methods=["OPTIONS"], scope=PUBLIC,
                 status_code=204, headers=TUS, tags=tags),
        ApiRoute(path="/uploads", endpoint=create, methods=["POST"], scope=write_scope,
                 raw_body=chunk_body, status_code=201, max_body_bytes=max_upload_bytes,
                 headers=TUS, tags=tags),
        ApiRoute(path=one, endpoint=status, methods=["GET", "HEAD"], scope=write_scope,
                 response=UploadStatus, headers=TUS, tags=tags),
        ApiRoute(path=one, endpoint=patch, methods=["PATCH"], scope=write_scope,
                 raw_body=chunk_body, status_code=204, max_body_bytes=max_upload_bytes,
                 headers=TUS, tags=tags),
        ApiRoute(path=one, endpoint=terminate, methods=["DELETE"], scope=write_scope,
                 status_code=204, headers=TUS, tags=tags),
        ApiRoute(path=one, endpoint=overridden, methods=["POST"], scope=write_scope,
                 raw_body=chunk_body, status_code=204, max_body_bytes=max_upload_bytes,
                 headers=TUS, tags=tags),
    ]


def _media_type(request: Any) -> str:
    return str(request.headers.get("content-type", "")).split(";")[0].strip().lower()
