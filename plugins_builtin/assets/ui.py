"""The Assets pages and the entity Attachments tab (server-rendered, htmx).

The Assets page is a grid of thumbnails (or a list) with select-many: its checkboxes belong to
one form whose buttons post the selection to ``/ui/assets/bulk/link`` (an entity picker, then
the links) or ``/ui/assets/bulk/delete`` (a confirmation, then the deletes); ``static/
gallery.js`` only adds the "N selected" bar, select-all and shift-click ranges.

The tab and the Assets page upload with the vendored Uppy Dashboard (``static/uploads.js``,
template ``_uploader.html``): resumable tus uploads to ``/v1/uploads`` with the session's
CSRF token in the ``X-CSRF-Token`` header, then a refresh of the list with htmx.  Without
JavaScript the tab's form posts to ``/ui/entities/{id}/attachments/upload``, bounded by the
UI's body limit.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from ff_plugin_sdk import (
    BadRequest,
    FaceForgeError,
    Kernel,
    NotFound,
    PreconditionFailed,
    UIPage,
    ValidationFailed,
)
from ff_plugin_sdk.conditional import parse_version
from ff_plugin_sdk.jsontext import NotJson, parse_json
from ff_plugin_sdk.storage import CHUNK_BYTES
from plugins_builtin.assets import gallery, import_ui, metadata_view
from plugins_builtin.assets import ingest as ingesting
from plugins_builtin.assets.api import check_entity_id, check_id
from plugins_builtin.assets.download import safe_inline
from plugins_builtin.assets.kinds import KINDS, valid_kind
from plugins_builtin.assets.receive import SNIFF_BYTES, clean_filename, filename_problem
from plugins_builtin.assets.store import AssetStore, Filters, Page

TAB_PAGE = 24
LIST_PAGE = 48
CANDIDATES = 10
MAX_LINKED_SHOWN = 100
STATES = {"active": "exclude", "deleted": "only", "all": "include"}
#: the query parameters that make an Assets page (what a bulk action returns to)
LIST_PARAMS = ("q", "kind", "mime", "entity", "state", "view", "derived", "cursor")
#: assets one bulk action takes: a few pages' worth, so a post stays small and quick
MAX_BULK = 500
#: the text preview: read through the storage provider, so S3 assets have one too
TEXT_PREVIEW_BYTES = 64 * 1024
TAB_NOTICES = {"uploaded": "Upload finished.", "linked": "Asset linked.",
               "unlinked": "Asset unlinked. It is still in the Assets list.",
               "thumbnail": "Primary thumbnail set.", "thumbnail-cleared": "Thumbnail removed."}
_HEX_ID = re.compile("^[0-9a-f]{64}$")


def kind_names(*extra: str | None) -> list[str]:
    """The known kinds, plus any other valid kind in use (a plugin's) so a select shows it."""
    names = [k.name for k in KINDS]
    return names + [k for k in extra if k and k not in names]


def is_image(asset: dict[str, Any]) -> bool:
    return str(asset["mime_type"]).startswith("image/")


def metadata_text(asset: dict[str, Any]) -> str:
    return json.dumps(asset["user_metadata"], indent=2, ensure_ascii=False)


def parse_metadata(text: str) -> tuple[dict[str, Any], str | None]:
    """User metadata typed as JSON: (the object, None) or ({}, why it is not one)."""
    if not text.strip():
        return {}, None
    try:
        value = parse_json(text)
    except NotJson as exc:
        return {}, f"This is not valid JSON: {exc}."
    if not isinstance(value, dict):
        return {}, "User metadata is a JSON object: {\"key\": value, ...}."
    return value, None


def form_role(form: Any) -> str | None:
    """The optional link role typed into a form (as the API takes it: 1 to 100 characters)."""
    role = str(form.get("role") or "").strip()
    if len(role) > 100:
        raise ValidationFailed("a role is at most 100 characters")
    return role or None


async def _paged(fetch: Callable[[str | None], Awaitable[Any]], cursor: str | None) -> Any:
    """``fetch(cursor)``; a cursor from another filter or a hand-edited URL starts over."""
    try:
        return await fetch(cursor)
    except BadRequest as exc:
        if exc.code != "invalid_cursor":
            raise
        return await fetch(None)


def attachments_renderer(kernel: Kernel,
                         store: AssetStore) -> Callable[[Any, dict[str, Any]], Awaitable[str]]:
    """The Attachments tab: linked assets (by kind, paged), upload, link, unlink, thumbnail."""

    async def render(request: Request, entity: dict[str, Any]) -> str:
        params = request.query_params
        entity_id = entity["entity_id"]
        kind = params.get("kind", "").strip()
        kind = kind if kind and valid_kind(kind) else ""
        cursor = params.get("cursor") or None
        items, next_cursor = await _paged(lambda c: store.entity_links(
            entity_id, kind=kind or None, limit=TAB_PAGE, cursor=c), cursor)
        link_q = params.get("link_q", "").strip()[:500]

        def link(**change: Any) -> str:
            query = {"tab": "attachments", "kind": kind} | change
            return f"/ui/entities/{entity_id}?" + urlencode({k: v for k, v in query.items() if v})

        gallery.with_previews([a for a, _ in items])
        return kernel.templates.render_string(request, "assets/attachments.html", {
            "entity": entity, "items": items, "next_cursor": next_cursor, "cursor": cursor,
            "kind": kind, "kinds": kind_names(kind), "link": link, "link_q": link_q,
            "candidates": gallery.with_previews(await _candidates(store, link_q))
            if link_q else [],
            "notice": TAB_NOTICES.get(params.get("notice", "")),
            "base": f"/ui/entities/{entity_id}/attachments",
        })

    return render


async def _candidates(store: AssetStore, text: str) -> list[dict[str, Any]]:
    """Assets to link: the one whose id was pasted, or names containing ``text``."""
    if _HEX_ID.match(text.lower()):
        found = await store.find(text.lower())
        return [await store.get(found["asset_id"])] if found and not found["deleted_at"] else []
    return (await store.list(Filters(q=text), limit=CANDIDATES)).items


async def _entity_candidates(entities: Any, text: str) -> list[dict[str, Any]]:
    """Entities to link to: the one whose id was pasted, or a search of names, aliases..."""
    if entities is None or not text:
        return []
    if _HEX_ID.match(text.lower()):
        with contextlib.suppress(NotFound):
            return [await entities.get(text.lower())]
        return []
    return list((await entities.list(q=text, limit=CANDIDATES)).rows)


@dataclass(frozen=True)
class TextPreview:
    """The beginning of a text asset (``text``), or why it is not shown (``problem``)."""

    text: str | None
    problem: str | None = None
    partial: bool = False


async def text_preview(kernel: Kernel, asset: dict[str, Any]) -> TextPreview | None:
    """The first :data:`TEXT_PREVIEW_BYTES` of a text asset, decoded; None when the asset is
    not text (or its bytes are gone)."""
    if not gallery.is_text(asset) or asset["deleted_at"] or not asset["blob_present"]:
        return None
    wanted = min(asset["size"], TEXT_PREVIEW_BYTES)
    data = bytearray()
    if wanted:
        try:
            provider = kernel.storage.provider(asset["provider"])
            chunks = provider.open_range(asset["asset_id"], 0, wanted - 1)
            try:
                async for chunk in chunks:
                    data += chunk[:wanted - len(data)]
                    if len(data) >= wanted:
                        break
            finally:
                with contextlib.suppress(Exception):
                    await chunks.aclose()  # type: ignore[attr-defined]
        except FaceForgeError as exc:
            return TextPreview(None, f"The text cannot be read now: {exc.message}")
    if b"\0" in data:
        return TextPreview(None, "This file holds binary data; download it to read it.")
    partial = asset["size"] > len(data)
    # a character cut at the end of the preview is left out, not shown as U+FFFD
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(data),
                                                                  final=not partial)
    return TextPreview(text, partial=partial)


def duration_text(seconds: float | None) -> str | None:
    """3.5 -> "0:03.5", 3725 -> "1:02:05"."""
    if seconds is None:
        return None
    whole, fraction = divmod(float(seconds), 1)
    hours, rest = divmod(int(whole), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
    tenths = int(fraction * 10)
    return text + (f".{tenths}" if tenths and not hours else "")


def selected_ids(form: Any) -> list[str]:
    """The assets a bulk form selected: at least one, at most :data:`MAX_BULK`."""
    ids = list(dict.fromkeys(str(v).strip().lower() for v in form.getlist("asset_id")))
    if not ids:
        raise ValidationFailed("Select at least one asset first.")
    if len(ids) > MAX_BULK:
        raise ValidationFailed(f"Select at most {MAX_BULK} assets at once; got {len(ids)}.")
    for asset_id in ids:
        if not _HEX_ID.match(asset_id):
            raise ValidationFailed(f"{asset_id[:80]!r} is not an asset id.")
    return ids


def list_url(back: str, **notice: Any) -> str:
    """The Assets page a bulk form came from (its filters only), with a notice."""
    kept = [(k, v) for k, v in parse_qsl(urlsplit(back).query) if k in LIST_PARAMS and v]
    query = kept + [(k, str(v)) for k, v in notice.items() if v]
    return "/ui/assets" + ("?" + urlencode(query) if query else "")


def _count(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) <= 6 else 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def bulk_notice(params: Any, entity_name: str | None) -> str | None:
    """What a bulk link or delete did, from the query string it redirected to."""
    done, skipped = _count(params.get("n")), _count(params.get("skipped"))
    if params.get("notice") == "linked":
        text = f"Linked {_plural(done, 'asset')} to {entity_name or 'the entity'}."
        if skipped:
            text += (f" {_plural(skipped, 'selected asset')} could not be linked: "
                     f"{'it was' if skipped == 1 else 'they were'} deleted meanwhile.")
        return text
    if params.get("notice") == "deleted-many":
        text = f"Deleted {_plural(done, 'asset')}."
        if skipped:
            text += f" {_plural(skipped, 'other')} {'was' if skipped == 1 else 'were'} " \
                    "already deleted."
        return text
    return None


def pages(kernel: Kernel, store: AssetStore) -> list[UIPage]:
    def render(request: Request, name: str, ctx: dict[str, Any], **kw: Any) -> Response:
        return kernel.templates.render(request, name, ctx, **kw)

    def entities() -> Any:
        service = kernel.services.get("entities.store")
        if service is None:
            raise NotFound("the entities plugin is not enabled", code="entities_disabled")
        return service

    async def entity_names(ids: list[str]) -> dict[str, str]:
        service = kernel.services.get("entities.store")
        names: dict[str, str] = {}
        if service is None:
            return names
        for entity_id in ids:
            with contextlib.suppress(NotFound):  # deleted since the links were read
                names[entity_id] = (await service.get(entity_id))["display_name"]
        return names

    # -- the Assets list and detail pages -------------------------------------------------
    async def list_page(request: Request) -> Response:
        params = request.query_params
        kind = params.get("kind", "").strip()
        mime = params.get("mime", "").strip()[:200]
        q = params.get("q", "").strip()[:500]
        entity = params.get("entity", "").strip().lower()
        state = params.get("state") or "active"
        state = state if state in STATES else "active"
        view = "list" if params.get("view") == "list" else "gallery"
        derived = params.get("derived") == "1"
        errors: dict[str, str] = {}
        if kind and not valid_kind(kind):
            errors["kind"] = f"{kind!r} is not a kind."
        if entity and not _HEX_ID.match(entity):
            errors["entity"] = "An entity id is 64 hexadecimal characters."
        filters = Filters(kind=None if "kind" in errors else kind or None, mime=mime or None,
                          q=q or None, entity_id=None if "entity" in errors else entity or None,
                          deleted=STATES[state])
        cursor = params.get("cursor") or None
        # thumbnails (two per image) are hidden unless asked for, or filtered on by kind
        hide = not derived and filters.kind != gallery.THUMBNAIL_KIND
        page: Page = await _paged(
            lambda c: gallery.list_without_kind(store, filters, gallery.THUMBNAIL_KIND,
                                                limit=LIST_PAGE, cursor=c)
            if hide else store.list(filters, limit=LIST_PAGE, cursor=c), cursor)

        def link(**change: Any) -> str:
            query = {"kind": kind, "mime": mime, "q": q, "entity": entity, "state": state,
                     "view": view, "derived": "1" if derived else ""} | change
            query = {k: v for k, v in query.items()
                     if v and (k, v) not in (("state", "active"), ("view", "gallery"))}
            return "/ui/assets" + ("?" + urlencode(query) if query else "")

        to = params.get("to", "").strip().lower()
        wanted = [e for e in (entity if "entity" not in errors else "", to)
                  if e and _HEX_ID.match(e)]
        names = await entity_names(wanted)
        types = list(gallery.TYPE_FAMILIES)
        if mime and mime not in dict(types):  # a hand-made URL's type stays shown
            types.append((mime, mime))
        return render(request, "assets/list.html", {
            "items": gallery.with_previews(page.items), "next_cursor": page.next_cursor,
            "cursor": cursor, "kind": kind,
            "kinds": kind_names(kind if valid_kind(kind) else None),
            "mime": mime, "types": types, "q": q, "entity": entity,
            "entity_name": names.get(entity), "state": state, "view": view,
            "derived": derived, "link": link, "errors": errors,
            "filtered": bool(kind or mime or q or entity), "notice": params.get("notice"),
            "bulk_notice": bulk_notice(params, names.get(to)),
            "max_bulk": MAX_BULK,
        }, block="results")

    async def linked_with_roles(asset: dict[str, Any]) -> list[tuple[str, str, str | None]]:
        """(entity id, name, link role) of the live entities the asset is linked to."""
        ids = asset["linked_entity_ids"][:MAX_LINKED_SHOWN]
        if not ids:
            return []
        rows = await kernel.db.fetchall(
            f"SELECT entity_id, role FROM asset_links WHERE asset_id = ? AND entity_id IN"
            f" ({','.join('?' * len(ids))})", (asset["asset_id"], *ids))
        roles = {row[0]: row[1] for row in rows}
        names = await entity_names(ids)
        return [(e, names[e], roles.get(e)) for e in ids if e in names]

    async def detail_context(asset: dict[str, Any]) -> dict[str, Any]:
        derived = await store.list(Filters(derived_from=asset["asset_id"]), limit=LIST_PAGE)
        source = (await store.find(asset["derived_from_asset_id"])
                  if asset["derived_from_asset_id"] else None)
        sizes = {tid: size for size, tid in gallery.thumbnails(asset).items()}
        linked = await linked_with_roles(asset)
        return {"asset": asset, "linked": linked,
                "more_linked": len(asset["linked_entity_ids"]) - len(linked),
                "derived": gallery.with_previews(derived.items), "thumb_sizes": sizes,
                "more_derived": derived.next_cursor is not None,
                "source": source, "kinds": kind_names(asset["kind"]), "errors": {},
                "values": {"kind": asset["kind"], "filename": asset["filename"],
                           "user_metadata": metadata_text(asset)},
                "conflict": False, "notice": None,
                "viewable": safe_inline(asset["mime_type"]),
                "family": gallery.family(asset),
                "large": gallery.large_preview(asset),
                "thumbnail_error": gallery.thumbnail_error(asset),
                "text": await text_preview(kernel, asset),
                "text_limit": TEXT_PREVIEW_BYTES,
                "duration": duration_text(asset["duration_seconds"]),
                "extracted": metadata_view.view(asset["extracted_metadata"])}

    async def detail(request: Request) -> Response:
        asset = await store.get(check_id(request.path_params["asset_id"]),
                                include_deleted=True)
        ctx = await detail_context(asset)
        ctx["notice"] = request.query_params.get("notice")
        return render(request, "assets/detail.html", ctx)

    async def edit(request: Request) -> Response:
        asset_id = check_id(request.path_params["asset_id"])
        form = await request.form()
        values = {"kind": str(form.get("kind") or "").strip(),
                  "filename": str(form.get("filename") or "").strip()}
        errors = {}
        if not valid_kind(values["kind"]):
            errors["kind"] = "Use dotted lowercase words, such as image.original."
        if message := filename_problem(values["filename"]):
            errors["filename"] = message
        asset = await store.get(asset_id)
        changes = {k: v for k, v in values.items() if v != asset[k]}
        merges: dict[str, dict[str, Any]] = {}
        values["user_metadata"] = metadata_text(asset)
        if "user_metadata" in form:  # the whole object as edited: a removed key is removed
            values["user_metadata"] = str(form["user_metadata"])
            edited, problem = parse_metadata(values["user_metadata"])
            if problem:
                errors["user_metadata"] = problem
            elif edited != asset["user_metadata"]:
                merges["user_metadata"] = {**{k: None for k in asset["user_metadata"]},
                                           **edited}
        status = 422 if errors else 200
        if not errors and (changes or merges):
            version = parse_version(str(form.get("version") or ""))
            try:
                await store.update(asset_id, changes, merges,
                                   if_match=None if version is None else frozenset({version}))
            except PreconditionFailed:
                status = 409
        if status != 200:
            ctx = await detail_context(await store.get(asset_id))
            if status == 422:
                ctx |= {"errors": errors, "values": values}
            ctx["conflict"] = status == 409
            return render(request, "assets/detail.html", ctx, block="edit", status=status)
        return kernel.templates.redirect(request, f"/ui/assets/{asset_id}?notice=saved")

    async def delete_form(request: Request) -> Response:
        asset = await store.get(check_id(request.path_params["asset_id"]))
        return render(request, "assets/delete.html", {"asset": asset})

    async def delete(request: Request) -> Response:
        await store.delete(check_id(request.path_params["asset_id"]), None)
        return kernel.templates.redirect(request, "/ui/assets?notice=deleted")

    # -- select-many on the Assets page: link to an entity, delete -------------------------
    async def selected_assets(ids: list[str]) -> list[dict[str, Any]]:
        found = []
        for asset_id in ids:
            with contextlib.suppress(NotFound):  # an id that never was an asset is left out
                found.append(await store.get(asset_id, include_deleted=True))
        return gallery.with_previews(found)

    async def bulk_link(request: Request) -> Response:
        """Without ``action=link``: the entity picker for the selection (its search answers
        htmx with the candidates only).  With it: link each asset, back to the list."""
        form = await request.form()
        linking = form.get("action") == "link"
        # the picker's live search (htmx) needs no selection: it answers the candidates only
        ids = [] if kernel.templates.is_htmx(request) and not linking else selected_ids(form)
        back = str(form.get("back") or "")
        entity_q = str(form.get("entity_q") or "").strip()[:500]
        entity_id = str(form.get("entity_id") or "").strip().lower()
        problem = None
        if linking:
            role = form_role(form)
            if not entity_id:
                problem = "Choose the entity to link to."
            else:
                try:
                    await entities().get(check_entity_id(entity_id))
                except NotFound as exc:
                    if exc.code == "entities_disabled":
                        raise
                    problem = ("That entity no longer exists: it was deleted, or the id is "
                               "wrong. Choose another.")
            if problem is None:
                linked = gone = 0
                for asset_id in ids:
                    try:
                        await store.link(entity_id, asset_id, role)
                    except NotFound:  # deleted since the page was shown
                        gone += 1
                    else:
                        linked += 1
                return kernel.templates.redirect(request, list_url(
                    back, notice="linked", n=linked, skipped=gone, to=entity_id))
        assets = await selected_assets(ids)
        return render(request, "assets/bulk_link.html", {
            "assets": assets, "back": back, "cancel": list_url(back), "entity_q": entity_q,
            "entity_id": entity_id,
            "role": str(form.get("role") or "")[:100], "problem": problem,
            "candidates": await _entity_candidates(entities(), entity_q),
        }, block="candidates", status=422 if problem else 200)

    async def bulk_delete(request: Request) -> Response:
        """Without ``action=delete``: what would be deleted, to confirm.  With it: delete
        each asset (one already deleted is counted, not an error), back to the list."""
        form = await request.form()
        ids = selected_ids(form)
        back = str(form.get("back") or "")
        if form.get("action") != "delete":
            assets = await selected_assets(ids)
            return render(request, "assets/bulk_delete.html", {
                "assets": [a for a in assets if not a["deleted_at"]],
                "gone": len(ids) - len([a for a in assets if not a["deleted_at"]]),
                "back": back, "cancel": list_url(back)})
        deleted = gone = 0
        for asset_id in ids:
            try:
                await store.delete(asset_id, None)
            except NotFound:
                gone += 1
            else:
                deleted += 1
        return kernel.templates.redirect(request, list_url(
            back, notice="deleted-many", n=deleted, skipped=gone))

    # -- the Attachments tab's posts --------------------------------------------------------
    async def live_entity(request: Request) -> str:
        entity_id = check_entity_id(request.path_params["entity_id"])
        await entities().get(entity_id)
        return entity_id

    async def form_asset(request: Request) -> str:
        return check_id(str((await request.form()).get("asset_id") or "").strip().lower())

    async def upload(request: Request) -> Response:
        """The no-JavaScript upload: the form's files, spooled by the form parser, are
        staged (hashed) and ingested one by one, linked to the entity."""
        entity_id = await live_entity(request)
        form = await request.form()
        files = [f for f in form.getlist("file") if isinstance(f, UploadFile) and f.filename]
        if not files:
            raise ValidationFailed("choose at least one file to upload")
        kind = str(form.get("kind") or "").strip() or None
        role = form_role(form)
        ingesting.check_kind(kind)
        ingest = kernel.services["assets.ingest"]
        for file in files:
            staged = kernel.storage.stage()
            head = b""
            try:
                while chunk := await file.read(CHUNK_BYTES):
                    head += chunk[:max(0, SNIFF_BYTES - len(head))]
                    await staged.write(chunk)
                sha256 = await staged.finish()
            except BaseException:
                staged.discard()
                raise
            await ingest.staged(staged, sha256, ingesting.Request(
                filename=clean_filename(file.filename or ""), kind=kind,
                entity_ids=[entity_id], role=role, declared_type=file.content_type,
                head=head))
        return redirect_back(request, entity_id, "uploaded")

    async def link(request: Request) -> Response:
        entity_id = await live_entity(request)
        asset_id = await form_asset(request)
        role = form_role(await request.form())
        await store.link(entity_id, asset_id, role)
        return redirect_back(request, entity_id, "linked")

    async def unlink(request: Request) -> Response:
        entity_id = await live_entity(request)
        asset_id = await form_asset(request)
        if not await store.unlink(entity_id, asset_id):
            raise NotFound("this asset is not linked to this entity", code="link_not_found")
        return redirect_back(request, entity_id, "unlinked")

    async def thumbnail(request: Request) -> Response:
        """Set (or, with ``clear``, remove) the entity's primary thumbnail."""
        entity_id = await live_entity(request)
        form = await request.form()
        if form.get("clear"):
            await entities().update(entity_id, {"primary_thumbnail_asset_id": None}, {})
            return redirect_back(request, entity_id, "thumbnail-cleared")
        asset = await store.get(await form_asset(request))
        if not is_image(asset):
            raise ValidationFailed(f"only an image can be a thumbnail; {asset['filename']!r} "
                                   f"is {asset['mime_type']}")
        await entities().update(entity_id, {"primary_thumbnail_asset_id": asset["asset_id"]},
                                {})
        return redirect_back(request, entity_id, "thumbnail")

    def redirect_back(request: Request, entity_id: str, notice: str) -> Response:
        return kernel.templates.redirect(
            request, f"/ui/entities/{entity_id}?tab=attachments&notice={notice}")

    one = "/assets/{asset_id}"
    tab = "/entities/{entity_id}/attachments"
    post = ["POST"]
    return [
        UIPage(path="/assets", endpoint=list_page, name="assets-list"),
        *import_ui.pages(kernel),  # before /assets/{asset_id}, which would take "import"
        UIPage(path="/assets/bulk/link", endpoint=bulk_link, methods=post,
               name="assets-bulk-link"),
        UIPage(path="/assets/bulk/delete", endpoint=bulk_delete, methods=post,
               name="assets-bulk-delete"),
        UIPage(path=one, endpoint=detail, name="assets-detail"),
        UIPage(path=one + "/edit", endpoint=edit, methods=post, name="assets-update"),
        UIPage(path=one + "/delete", endpoint=delete_form, name="assets-delete"),
        UIPage(path=one + "/delete", endpoint=delete, methods=post, name="assets-delete-post"),
        UIPage(path=tab + "/upload", endpoint=upload, methods=post, name="attachments-upload"),
        UIPage(path=tab + "/link", endpoint=link, methods=post, name="attachments-link"),
        UIPage(path=tab + "/unlink", endpoint=unlink, methods=post, name="attachments-unlink"),
        UIPage(path=tab + "/thumbnail", endpoint=thumbnail, methods=post,
               name="attachments-thumbnail"),
    ]
