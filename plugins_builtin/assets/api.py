"""``/v1/assets`` and the entity links: the HTTP surface of the assets plugin."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from ff_plugin_sdk import SQL_INT_MAX, ApiRoute, Kernel, NotFound, ValidationFailed
from ff_plugin_sdk.conditional import if_match, not_modified, version_etag
from ff_plugin_sdk.jsontext import NotJson, parse_json
from ff_plugin_sdk.storage import BlobMissing
from plugins_builtin.assets.download import blob_response
from plugins_builtin.assets.ingest import Ingest, Request, check_kind
from plugins_builtin.assets.kinds import KIND_PATTERN
from plugins_builtin.assets.receive import filename_problem, receive
from plugins_builtin.assets.store import AssetStore, Filters

Hex64 = Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="SHA-256 hex")]
Kind = Annotated[str, Meta(pattern=KIND_PATTERN, max_length=100)]
Role = Annotated[str, Meta(min_length=1, max_length=100)]
Filename = Annotated[str, Meta(min_length=1, max_length=255)]
PluginKey = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.\-]{1,100}$")]
_ID = re.compile("^[0-9a-f]{64}$")
#: a companion ``_meta.json`` larger than this is not metadata
MAX_META_BYTES = 1024 * 1024


class Owner(msgspec.Struct, kw_only=True):
    type: str
    id: str | None


class StorageRef(msgspec.Struct, kw_only=True):
    provider: str
    bucket: str | None
    key: str


class Asset(msgspec.Struct, kw_only=True):
    asset_id: str
    content_hash: str
    kind: str
    filename: str
    mime_type: str
    size: int
    size_bytes: int
    provider: str
    storage: StorageRef
    owner: Owner
    linked_entity_ids: list[str]
    derived_from_asset_id: str | None
    extracted_metadata: dict[str, Any]
    user_metadata: dict[str, Any]
    plugin_data: dict[str, Any]
    created_at: str
    updated_at: str
    deleted_at: str | None
    #: bumped by every change; the record's ``ETag`` is this number quoted
    version: int
    #: False once the bytes of a deleted asset were removed
    blob_present: bool
    #: pixels and seconds, lifted from ``extracted_metadata`` (null until extracted)
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


class Uploaded(Asset, kw_only=True):
    #: True when these bytes were already stored: the existing asset, with the request's
    #: kind, metadata and links applied
    deduplicated: bool


class LinkedAsset(Asset, kw_only=True):
    role: str | None


class AssetPage(msgspec.Struct, kw_only=True):
    items: list[Asset]
    next_cursor: str | None


class LinkedPage(msgspec.Struct, kw_only=True):
    items: list[LinkedAsset]
    next_cursor: str | None


class ListQuery(msgspec.Struct, kw_only=True):
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    cursor: str | None = None
    offset: Annotated[int, Meta(ge=0, le=SQL_INT_MAX)] | None = None
    order: Literal["asc", "desc"] = "desc"
    kind: Kind | None = None
    #: a MIME type or its start (``image/``)
    mime: Annotated[str, Meta(max_length=200)] | None = None
    entity_id: Hex64 | None = None
    derived_from: Hex64 | None = None
    #: part of the file name, any case
    q: Annotated[str, Meta(max_length=500)] | None = None
    include_deleted: bool = False
    only_deleted: bool = False


class PageQuery(msgspec.Struct, kw_only=True):
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    cursor: str | None = None
    kind: Kind | None = None


class GetQuery(msgspec.Struct, kw_only=True):
    include_deleted: bool = False


class DownloadQuery(msgspec.Struct, kw_only=True):
    #: show in the browser rather than save (``Content-Disposition: inline``)
    inline: bool = False


class UploadQuery(msgspec.Struct, kw_only=True):
    kind: Kind | None = None
    entity_id: list[Hex64] = []
    role: Role | None = None
    derived_from_asset_id: Hex64 | None = None


class AssetPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Partial update; ``user_metadata`` and ``plugin_data`` merge by key, null removes."""

    kind: Kind | UnsetType = UNSET
    filename: Filename | UnsetType = UNSET
    user_metadata: dict[str, Any] | UnsetType = UNSET
    plugin_data: dict[PluginKey, dict[str, Any] | None] | UnsetType = UNSET


class LinkBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: Role | None = None


UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"},
        "meta": {"description": "the companion _meta.json (a file part or JSON text), "
                                "merged into user_metadata"},
        "kind": {"type": "string", "pattern": KIND_PATTERN},
        "entity_id": {"type": "array", "items": {"type": "string"},
                      "description": "entities to link the asset to (repeatable)"},
        "role": {"type": "string"},
        "derived_from_asset_id": {"type": "string"}}}}}}


def check_id(asset_id: str) -> str:
    if not _ID.match(asset_id):
        raise NotFound(f"no asset with id {asset_id!r}", code="asset_not_found")
    return asset_id


def check_entity_id(entity_id: str) -> str:
    if not _ID.match(entity_id):
        raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
    return entity_id


def _public(asset: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in asset.items() if not k.startswith("_")}


def to_asset(asset: dict[str, Any]) -> Asset:
    return msgspec.convert(_public(asset), Asset)


_encoder = msgspec.json.Encoder()


def with_etag(asset: dict[str, Any], status: int = 200, **extra: Any) -> Response:
    body = _public(asset) | extra
    return Response(_encoder.encode(body), status_code=status, media_type="application/json",
                    headers={"ETag": version_etag(asset)})


def parse_meta(text: str | None, source: str = "form") -> dict[str, Any] | None:
    """The companion ``_meta.json``: a JSON object, merged into ``user_metadata``."""
    if text is None or not text.strip():
        return None
    try:
        meta = parse_json(text)
    except NotJson as exc:
        raise ValidationFailed(f"meta is not valid JSON: {exc}", details=[
            {"path": f"{source}.meta", "message": "invalid JSON"}]) from exc
    if not isinstance(meta, dict):
        raise ValidationFailed("meta must be a JSON object", details=[
            {"path": f"{source}.meta", "message": "not an object"}])
    return meta


def _one_id(values: list[str], name: str, source: str) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise ValidationFailed(f"{name} given more than once", details=[
            {"path": f"{source}.{name}", "message": "more than one value"}])
    return _hex_field(values[0], name, source)


def _hex_field(value: str, name: str, source: str) -> str:
    value = value.strip()
    if not _ID.match(value):
        raise ValidationFailed(f"{name} must be a SHA-256 hex id; got {value[:80]!r}",
                               details=[{"path": f"{source}.{name}", "message": "not an id"}])
    return value


def upload_request(query: UploadQuery, fields: dict[str, list[str]], filename: str,
                   declared_type: str | None, head: bytes, source: str = "form") -> Request:
    """The request's fields (form or query string; the form wins) as an ingest request;
    ``source`` names where the fields came from in error details."""
    kind = (fields.get("kind") or [None])[-1] or query.kind
    check_kind(kind)
    role = (fields.get("role") or [None])[-1] or query.role
    if role is not None and not 1 <= len(role) <= 100:
        raise ValidationFailed("role must be 1 to 100 characters", details=[
            {"path": f"{source}.role", "message": "length"}])
    entity_ids = [_hex_field(v, "entity_id", source) for v in fields.get("entity_id", [])]
    if role is not None and not entity_ids and not query.entity_id:
        raise ValidationFailed("role is the role of a link: give an entity_id to link to",
                               details=[{"path": f"{source}.role", "message": "no entity_id"}])
    derived = _one_id(fields.get("derived_from_asset_id", []), "derived_from_asset_id",
                      source)
    metas = fields.get("meta", [])
    if len(metas) > 1:
        raise ValidationFailed("meta given more than once", details=[
            {"path": f"{source}.meta", "message": "more than one value"}])
    meta = parse_meta(metas[0] if metas else None, source)
    return Request(filename=filename, kind=kind, meta=meta,
                   entity_ids=list(dict.fromkeys([*query.entity_id, *entity_ids])), role=role,
                   derived_from=derived or query.derived_from_asset_id,
                   declared_type=declared_type, head=head)


def routes(kernel: Kernel, store: AssetStore, ingest: Ingest,
           max_upload_bytes: int) -> list[ApiRoute]:
    async def upload(request: Any, query: UploadQuery) -> Response:
        """Upload one file (multipart ``file``), streamed to storage while hashed.

        The same bytes again answer 200 with ``"deduplicated": true`` and the existing
        asset, with this request's kind, metadata and links applied."""
        await ingest.check(Request(filename="", kind=query.kind, entity_ids=query.entity_id,
                                   derived_from=query.derived_from_asset_id))
        try:
            received = await receive(request.stream(), request.headers.get("content-type", ""),
                                     kernel.storage, max_upload_bytes)
        except ClientDisconnect:
            return Response(status_code=499)  # nobody is listening; nothing was kept
        assert received.staged is not None
        try:
            wanted = upload_request(query, received.fields, received.filename,
                                    received.declared_type, received.head)
        except BaseException:
            received.staged.discard()
            raise
        asset, deduplicated = await ingest.staged(received.staged, received.sha256, wanted)
        return with_etag(asset, 200 if deduplicated else 201, deduplicated=deduplicated)

    async def list_assets(request: Any, query: ListQuery) -> AssetPage:
        """List assets, newest first: filter by kind, MIME type, entity, source, name."""
        deleted = "only" if query.only_deleted else (
            "include" if query.include_deleted else "exclude")
        page = await store.list(
            Filters(kind=query.kind, mime=query.mime, entity_id=query.entity_id,
                    derived_from=query.derived_from, q=query.q, deleted=deleted),
            limit=query.limit, cursor=query.cursor, order=query.order, offset=query.offset)
        return AssetPage(items=[to_asset(a) for a in page.items], next_cursor=page.next_cursor)

    async def get_asset(request: Any, query: GetQuery) -> Response:
        """One asset's record, with its ``ETag``."""
        asset = await store.get(check_id(request.path_params["asset_id"]),
                                include_deleted=query.include_deleted)
        if not_modified(request, version_etag(asset)):
            return Response(status_code=304, headers={"ETag": version_etag(asset)})
        return with_etag(asset)

    async def patch_asset(request: Any, body: AssetPatch) -> Response:
        """Change kind or filename; merge ``user_metadata``/``plugin_data`` (null removes).
        With ``If-Match``, only if nobody changed the asset since (else 412)."""
        asset_id = check_id(request.path_params["asset_id"])
        versions = if_match(request)
        data = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not UNSET}
        merges = {k: data.pop(k) for k in ("user_metadata", "plugin_data") if k in data}
        if "filename" in data:
            data["filename"] = data["filename"].strip()
            if problem := filename_problem(data["filename"]):
                raise ValidationFailed(f"filename: {problem}", details=[
                    {"path": "$.filename", "message": problem}])
        return with_etag(await store.update(asset_id, data, merges, if_match=versions))

    async def delete_asset(request: Any) -> None:
        """Soft-delete; its bytes are removed once no live asset needs them."""
        await store.delete(check_id(request.path_params["asset_id"]), if_match(request))

    async def derived_assets(request: Any, query: PageQuery) -> AssetPage:
        """Assets derived from this one (thumbnails, extracted previews)."""
        asset_id = check_id(request.path_params["asset_id"])
        await store.get(asset_id)
        page = await store.list(Filters(derived_from=asset_id, kind=query.kind),
                                limit=query.limit, cursor=query.cursor)
        return AssetPage(items=[to_asset(a) for a in page.items], next_cursor=page.next_cursor)

    async def download(request: Any, query: DownloadQuery) -> Response:
        """The bytes: streaming, ``Range`` (single and multiple), ``If-Range``, ``ETag``
        (the content hash), ``Last-Modified``; HEAD too."""
        asset = await store.get(check_id(request.path_params["asset_id"]))
        if not asset["blob_present"]:
            raise NotFound("the bytes of this asset are no longer stored",
                           code="blob_missing")
        provider = kernel.storage.provider(asset["provider"])
        asset_id = asset["asset_id"]
        if request.method == "HEAD" and await provider.stat(asset_id) is None:
            # a GET peeks at the bytes before answering; a HEAD asks the store instead
            raise BlobMissing("the bytes of this asset are missing from its store")
        return blob_response(
            request, open_range=lambda start, end: provider.open_range(asset_id, start, end),
            size=asset["size"], etag=asset_id, last_modified=asset["created_at"],
            filename=asset["filename"], media_type=asset["mime_type"], inline=query.inline)

    async def entity_assets(request: Any, query: PageQuery) -> LinkedPage:
        """The assets linked to an entity, in link order, each with its role."""
        entity_id = check_entity_id(request.path_params["entity_id"])
        await store.require_entities([entity_id])
        check_kind(query.kind)
        items, next_cursor = await store.entity_links(entity_id, kind=query.kind,
                                                      limit=query.limit, cursor=query.cursor)
        return LinkedPage(items=[msgspec.convert(_public(a) | {"role": role}, LinkedAsset)
                                 for a, role in items], next_cursor=next_cursor)

    async def link(request: Any, body: LinkBody | None) -> Response:
        """Link an asset to an entity (optional ``{"role": ...}``); linking again changes
        the role."""
        entity_id = check_entity_id(request.path_params["entity_id"])
        asset_id = check_id(request.path_params["asset_id"])
        await store.require_entities([entity_id])
        await store.link(entity_id, asset_id, body.role if body else None)
        return with_etag(await store.get(asset_id))

    async def unlink(request: Any) -> Response:
        """Remove the link between an entity and an asset (the asset stays)."""
        entity_id = check_entity_id(request.path_params["entity_id"])
        asset_id = check_id(request.path_params["asset_id"])
        await store.get(asset_id)
        if not await store.unlink(entity_id, asset_id):
            raise NotFound(f"asset {asset_id} is not linked to entity {entity_id}",
                           code="link_not_found")
        return with_etag(await store.get(asset_id))

    one = "/assets/{asset_id}"
    pair = "/entities/{entity_id}/assets/{asset_id}"
    tags = ["assets"]
    read, write = "assets:read", "assets:write"

    def link_route(path: str, method: str) -> ApiRoute:
        return ApiRoute(path=path, endpoint=link, methods=[method], scope=write, body=LinkBody,
                        body_required=False, response=Asset, tags=tags)

    def unlink_route(path: str, method: str) -> ApiRoute:
        return ApiRoute(path=path, endpoint=unlink, methods=[method], scope=write,
                        response=Asset, tags=tags)

    return [
        ApiRoute(path="/assets/upload", endpoint=upload, methods=["POST"], scope=write,
                 query=UploadQuery, raw_body=UPLOAD_BODY, response=Uploaded, status_code=201,
                 max_body_bytes=max_upload_bytes + MAX_META_BYTES + 64 * 1024, tags=tags),
        ApiRoute(path="/assets", endpoint=list_assets, scope=read, query=ListQuery,
                 response=AssetPage, tags=tags),
        ApiRoute(path=one, endpoint=get_asset, scope=read, query=GetQuery, response=Asset,
                 tags=tags),
        ApiRoute(path=one, endpoint=patch_asset, methods=["PATCH"], scope=write,
                 body=AssetPatch, response=Asset, tags=tags),
        ApiRoute(path=one, endpoint=delete_asset, methods=["DELETE"], scope=write,
                 status_code=204, tags=tags),
        ApiRoute(path=one + "/derived", endpoint=derived_assets, scope=read, query=PageQuery,
                 response=AssetPage, tags=tags),
        ApiRoute(path=one + "/download", endpoint=download, scope=read, query=DownloadQuery,
                 media_type="application/octet-stream", tags=tags),
        ApiRoute(path="/entities/{entity_id}/assets", endpoint=entity_assets, scope=read,
                 query=PageQuery, response=LinkedPage, tags=tags),
        link_route(pair + "/link", "POST"),
        unlink_route(pair + "/unlink", "POST"),
        link_route(pair, "POST"),
        unlink_route(pair, "DELETE"),
    ]

