"""``client.assets``: files, streamed up (plainly or resumably over tus) and down (whole,
by range, resuming), their records, derived assets and links to entities."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from ff_plugin_sdk.client import _download, _tus
from ff_plugin_sdk.client._body import OCTETS, Multipart, Source, as_body, source_name
from ff_plugin_sdk.client._group import Group, M, endpoint, pages, streaming
from ff_plugin_sdk.client._plan import Call, Feed, Plan, seg
from ff_plugin_sdk.client.entities import given, if_match
from ff_plugin_sdk.client.models import Asset, Page

#: seconds to wait for the answer once a whole upload is sent (Core stores it first)
UPLOAD_ANSWER_SECONDS = 600.0


def _describe(source: Source, filename: str | None, kind: str | None,
              entity_ids: Sequence[str], role: str | None, derived_from: str | None,
              meta: Mapping[str, Any] | None, mime_type: str | None) -> dict[str, str]:
    """What an upload says about its file, as form fields (and tus metadata)."""
    name = filename or source_name(source) or "upload"
    fields = {"filename": name,
              "filetype": mime_type or mimetypes.guess_type(name)[0] or OCTETS,
              "kind": kind, "entity_id": ",".join(entity_ids) or None, "role": role,
              "derived_from_asset_id": derived_from,
              "meta": msgspec.json.encode(meta).decode() if meta is not None else None}
    return {key: value for key, value in fields.items() if value is not None}


class Assets(Group[M]):
    # -- uploads -------------------------------------------------------------------------
    @endpoint
    def upload(self, source: Source, *, filename: str | None = None, kind: str | None = None,
               entity_ids: Sequence[str] = (), role: str | None = None,
               derived_from: str | None = None, meta: Mapping[str, Any] | None = None,
               mime_type: str | None = None) -> Plan[Asset]:
        """Upload a file in one request, streamed (a path, bytes, an open binary file, an
        iterable of bytes).  ``kind`` (``model.lora``), links to ``entity_ids`` (with
        ``role``), ``derived_from`` (the asset it was made from: a derived asset) and
        ``meta`` (merged into ``user_metadata``) apply to it.  The same bytes again answer
        the existing asset with ``deduplicated`` set (so a retry is harmless)."""
        fields = _describe(source, filename, kind, entity_ids, role, derived_from, meta,
                           mime_type)
        # the form repeats entity_id where tus metadata joins the ids with commas
        form = Multipart([(key, value) for key, value in fields.items()
                          if key not in ("filename", "filetype", "entity_id")] +
                         [("entity_id", entity_id) for entity_id in entity_ids],
                         "file", fields["filename"], fields["filetype"], as_body(source))
        return self._fetch(Call("POST", "/v1/assets/upload", content=form, idempotent=True,
                                read_timeout=UPLOAD_ANSWER_SECONDS), Asset)

    @endpoint
    def upload_resumable(self, source: str | os.PathLike[str] | Any, *,
                         chunk_bytes: int = _tus.DEFAULT_CHUNK_BYTES,
                         upload_url: str | None = None,
                         on_created: Callable[[str], None] | None = None,
                         filename: str | None = None, kind: str | None = None,
                         entity_ids: Sequence[str] = (), role: str | None = None,
                         derived_from: str | None = None,
                         meta: Mapping[str, Any] | None = None,
                         mime_type: str | None = None) -> Plan[Asset]:
        """Upload a big file over tus, ``chunk_bytes`` per request, resuming from Core's
        offset after a failure.  ``source``: a path or a seekable binary file.
        ``on_created(url)`` gets the upload's address as soon as it exists: keep it, and
        a later call with ``upload_url=url`` (another process, after a crash) continues
        where Core stands.  The other arguments are :meth:`upload`'s."""
        body = as_body(source)
        metadata = _describe(source, filename, kind, entity_ids, role, derived_from, meta,
                             mime_type)
        asset_id, deduplicated = yield from _tus.upload(body, metadata, chunk_bytes,
                                                        self._retry, upload_url, on_created)
        asset = yield from Assets.get.build(self, asset_id)
        asset.deduplicated = deduplicated
        return asset

    # -- downloads -----------------------------------------------------------------------
    @endpoint
    def download(self, asset_id: str, path: str | os.PathLike[str], *, offset: int = 0,
                 length: int | None = None, resume: bool = True) -> Plan[Path]:
        """Save the asset's bytes (``length`` bytes from ``offset``: a range) to ``path``,
        streamed through ``<path>.part``; a dropped connection resumes where it broke, and
        with ``resume`` a ``.part`` left by an earlier call is continued.  A whole file is
        checked against its id (SHA-256).  Files are written from the calling thread."""
        return _download.to_file(asset_id, Path(path), offset, length, resume, self._retry)

    @streaming
    def stream(self, asset_id: str, *, offset: int = 0,
               length: int | None = None) -> Feed[bytes]:
        """The asset's bytes (or ``length`` of them from ``offset``) in chunks as they
        arrive, resuming after a dropped connection; nothing is held in memory."""
        return _download.ranged(asset_id, offset, length, self._retry)

    # -- records -------------------------------------------------------------------------
    @endpoint
    def get(self, asset_id: str, *, include_deleted: bool = False) -> Plan[Asset]:
        return self._fetch(Call("GET", f"/v1/assets/{seg(asset_id)}", params={
            "include_deleted": include_deleted or None}), Asset)

    @endpoint
    def list(self, *, kind: str | None = None, mime: str | None = None,
             entity_id: str | None = None, derived_from: str | None = None,
             q: str | None = None, order: Literal["asc", "desc"] = "desc", limit: int = 50,
             cursor: str | None = None, include_deleted: bool = False,
             only_deleted: bool = False) -> Plan[Page[Asset]]:
        """One page of assets, newest first: by ``kind``, MIME type (or its start,
        ``image/``), linked entity, source asset, part of the file name (``q``)."""
        params = {"kind": kind, "mime": mime, "entity_id": entity_id,
                  "derived_from": derived_from, "q": q, "order": order, "limit": limit,
                  "cursor": cursor, "include_deleted": include_deleted or None,
                  "only_deleted": only_deleted or None}
        return self._fetch(Call("GET", "/v1/assets", params=params), Page[Asset])

    @streaming
    def every(self, *, kind: str | None = None, mime: str | None = None,
              entity_id: str | None = None, derived_from: str | None = None,
              q: str | None = None) -> Feed[Asset]:
        return pages(lambda cursor: Assets.list.build(
            self, kind=kind, mime=mime, entity_id=entity_id, derived_from=derived_from, q=q,
            limit=500, cursor=cursor))

    @endpoint
    def derived(self, asset_id: str, *, kind: str | None = None, limit: int = 50,
                cursor: str | None = None) -> Plan[Page[Asset]]:
        """Assets made from this one (thumbnails, previews, a model trained on it); make
        one with ``upload(..., derived_from=asset_id)``."""
        return self._fetch(Call("GET", f"/v1/assets/{seg(asset_id)}/derived", params={
            "kind": kind, "limit": limit, "cursor": cursor}), Page[Asset])

    @endpoint
    def update(self, asset_id: str, *, kind: str | UnsetType = UNSET,
               filename: str | UnsetType = UNSET,
               user_metadata: Mapping[str, Any] | UnsetType = UNSET,
               plugin_data: Mapping[str, Any] | UnsetType = UNSET,
               if_version: int | None = None) -> Plan[Asset]:
        """Change the kind or file name; ``user_metadata`` and ``plugin_data`` merge by key
        (None removes one)."""
        body = given(kind=kind, filename=filename, user_metadata=user_metadata,
                     plugin_data=plugin_data)
        return self._fetch(Call("PATCH", f"/v1/assets/{seg(asset_id)}", json=body,
                                headers=if_match(if_version)), Asset)

    @endpoint
    def delete(self, asset_id: str, *, if_version: int | None = None) -> Plan[None]:
        """Soft delete; the bytes go once no live asset needs them."""
        return self._none(Call("DELETE", f"/v1/assets/{seg(asset_id)}",
                               headers=if_match(if_version)))

    # -- links to entities ---------------------------------------------------------------
    @endpoint
    def linked(self, entity_id: str, *, kind: str | None = None, limit: int = 50,
               cursor: str | None = None) -> Plan[Page[Asset]]:
        """The assets linked to an entity, in link order, each with its ``role``."""
        return self._fetch(Call("GET", f"/v1/entities/{seg(entity_id)}/assets", params={
            "kind": kind, "limit": limit, "cursor": cursor}), Page[Asset])

    @endpoint
    def link(self, entity_id: str, asset_id: str, *, role: str | None = None) -> Plan[Asset]:
        """Link the asset to the entity (again: changes the role)."""
        return self._fetch(Call("POST", f"/v1/entities/{seg(entity_id)}/assets/"
                                        f"{seg(asset_id)}", json={"role": role},
                                idempotent=True), Asset)

    @endpoint
    def unlink(self, entity_id: str, asset_id: str) -> Plan[Asset]:
        """Remove the link (the asset stays); ``NotFound`` (``link_not_found``) if none."""
        return self._fetch(Call("DELETE", f"/v1/entities/{seg(entity_id)}/assets/"
                                          f"{seg(asset_id)}"), Asset)
