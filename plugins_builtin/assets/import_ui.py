"""The "Import a folder" page (``/ui/assets/import``): a form that starts a bulk import
(the ``assets.importer`` service) and leads to the job's page, where it is followed live.

The form posts without JavaScript (a 303 to the job, or the form again with the problem
next to its field, 422).  Its entity search answers htmx with the candidates only, as the
bulk link picker does; without JavaScript its "Find" button shows them.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ff_plugin_sdk import Kernel, NotFound, UIPage, ValidationFailed
from plugins_builtin.assets.bulk_import import BulkImportRequest
from plugins_builtin.assets.kinds import KINDS

CANDIDATES = 10
_HEX_ID = re.compile("^[0-9a-f]{64}$")
#: the request's fields as the form names them
_FIELD_OF = {"path": "path", "kind": "kind", "entity_id": "entity", "include": "include",
             "exclude": "exclude"}
DEFAULTS = {"path": "", "recursive": True, "kind": "", "entity_q": "", "entity_id": "",
            "include": "", "exclude": "", "follow_symlinks": False}


def patterns(text: str) -> list[str]:
    """"*.png, *.jpg" or one per line -> ["*.png", "*.jpg"]."""
    return [p.strip() for p in re.split(r"[,\r\n]", text) if p.strip()]


def form_values(form: Any) -> dict[str, Any]:
    """What was typed, kept as typed (a form shown again keeps it)."""
    return {"path": str(form.get("path") or "").strip(),
            "recursive": bool(form.get("recursive")),
            "kind": str(form.get("kind") or "").strip(),
            "entity_q": str(form.get("entity_q") or "").strip()[:500],
            "entity_id": str(form.get("entity_id") or "").strip().lower(),
            "include": str(form.get("include") or ""),
            "exclude": str(form.get("exclude") or ""),
            "follow_symlinks": bool(form.get("follow_symlinks"))}


def field_of(path: str) -> str:
    """The form field a request path (``$.include[2]``, ``kind``) belongs to."""
    name = re.sub(r"^\$\.", "", path).split("[", 1)[0].split(".", 1)[0]
    return _FIELD_OF.get(name, "form")


def pages(kernel: Kernel) -> list[UIPage]:
    def entities() -> Any:
        return kernel.services.get("entities.store")

    async def candidates(text: str) -> list[dict[str, Any]]:
        """Entities for the search box: the one whose id was pasted, or a name search."""
        service = entities()
        if service is None or not text:
            return []
        if _HEX_ID.match(text.lower()):
            with contextlib.suppress(NotFound):
                return [await service.get(text.lower())]
            return []
        return list((await service.list(q=text, limit=CANDIDATES)).rows)

    async def show(request: Request, values: dict[str, Any],
                   errors: dict[str, str] | None = None, *, block: str | None = None,
                   status: int = 200) -> Response:
        names = [k.name for k in KINDS]
        if values["kind"] and values["kind"] not in names:  # typed by hand: still shown
            names.append(values["kind"])
        return kernel.templates.render(request, "assets_import.html", {
            "values": values, "errors": errors or {}, "with_entities": entities() is not None,
            "kinds": names,
            "candidates": await candidates(values["entity_q"]),
        }, block=block, status=status)

    async def entity_of(values: dict[str, Any]) -> tuple[str | None, str | None]:
        """(the entity to link to, or why there is none): the candidate chosen, a pasted
        id, or the only entity the search finds."""
        if not values["entity_q"]:
            return None, None
        if values["entity_id"]:
            return values["entity_id"], None
        found = await candidates(values["entity_q"])
        if len(found) == 1:
            return found[0]["entity_id"], None
        if not found:
            return None, f"No entity matches “{values['entity_q']}”."
        return None, "Several entities match: choose one."

    async def form(request: Request) -> Response:
        return await show(request, dict(DEFAULTS))

    async def submit(request: Request) -> Response:
        posted = await request.form()
        values = form_values(posted)
        # the entity search: live (htmx: its block) or the "Find" button (the whole form)
        if posted.get("action") != "import":
            return await show(request, values, block="candidates")
        errors: dict[str, str] = {}
        entity_id, problem = await entity_of(values)
        if problem:
            errors["entity"] = problem
        if not values["path"]:
            errors["path"] = "Type the folder's full path, such as /home/me/Pictures."
        if errors:
            return await show(request, values, errors, status=422)
        try:
            job = await kernel.services["assets.importer"].start(msgspec.convert({
                "path": values["path"], "recursive": values["recursive"],
                "kind": values["kind"] or None, "entity_id": entity_id,
                "include": patterns(values["include"]),
                "exclude": patterns(values["exclude"]),
                "follow_symlinks": values["follow_symlinks"]}, BulkImportRequest))
        except msgspec.ValidationError as exc:
            message, _, at = str(exc).rpartition(" - at `")
            errors[field_of(at.rstrip("`"))] = message or str(exc)
        except ValidationFailed as exc:
            paths = [d.get("path", "") for d in exc.details or [] if isinstance(d, dict)]
            errors[field_of(paths[0] if paths else "")] = exc.message
        except NotFound as exc:  # the entity was deleted meanwhile
            errors["entity"] = exc.message
        else:
            return kernel.templates.redirect(request, f"/ui/jobs/{job['job_id']}")
        return await show(request, values, errors, status=422)

    return [
        UIPage(path="/assets/import", endpoint=form, name="assets-import"),
        UIPage(path="/assets/import", endpoint=submit, methods=["POST"],
               name="assets-import-post"),
    ]
