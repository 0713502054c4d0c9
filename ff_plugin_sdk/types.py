"""The values plugins hand to the kernel through hooks.

Pure data: nothing here imports the server, so an out-of-process plugin can share these
types with an in-process one.  Endpoints receive the server's request object; they need
not import it to be written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec

#: SQLite keeps whole numbers in 64 bits; binding a larger one into a query fails there, so
#: numbers from requests that reach SQL are declared with these bounds (-> 422, not 500).
SQL_INT_MAX = 2**63 - 1
SqlInt = Annotated[int, msgspec.Meta(ge=-SQL_INT_MAX - 1, le=SQL_INT_MAX)]

#: The "scope" of a route anyone may call, signed in or not (``/healthz``, the login page).
PUBLIC = "public"
#: What a scope name looks like: ``<area>:<verb>``.
SCOPE_PATTERN = r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$"


@dataclass(frozen=True, kw_only=True)
class Scope:
    """A permission a route may require (``entities:read``); contributed by the plugin that
    owns the routes, through ``faceforge_scopes``."""

    name: str
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is calling: the install token, a UI session, or a scoped token.

    ``scopes`` is what it may do; ``csrf_token`` is set for a session (unsafe requests made
    with its cookie must carry it).
    """

    kind: str  # "install_token" | "session" | "token"
    scopes: frozenset[str]
    name: str = ""
    csrf_token: str | None = None
    session_id: str | None = None
    #: what identifies the credential, to tell later whether it still holds
    credential: str = ""


@dataclass(frozen=True, kw_only=True)
class ApiRoute:
    """One HTTP endpoint, mounted under ``/v1``.

    ``endpoint(request)`` returns a msgspec Struct, a dict/list, ``None`` (-> 204) or a
    response object.  ``body``/``query``/``response`` are msgspec types: the kernel decodes
    the body and query with them and documents all three in OpenAPI.
    """

    path: str
    endpoint: Callable[..., Awaitable[Any]]
    #: the permission scope the caller needs, or :data:`PUBLIC`
    scope: str
    methods: Sequence[str] = ("GET",)
    body: Any = None
    query: Any = None
    response: Any = None
    status_code: int = 200
    summary: str = ""
    tags: Sequence[str] = ()
    #: a route without a JSON response (a download, a stream): documented by media type
    media_type: str | None = None
    #: the largest request body accepted (413 past it); None: ``limits.max_body_bytes``
    max_body_bytes: int | None = None
    #: False: an empty body is allowed and the endpoint gets ``body=None``
    body_required: bool = True
    #: a body that is not JSON (a multipart upload), as an OpenAPI ``requestBody``; the
    #: endpoint reads it from the request itself
    raw_body: dict[str, Any] | None = None
    #: headers on every answer of this route, including the kernel's own refusals (401,
    #: 403, 413): a protocol's mandatory headers, such as tus's ``Tus-Resumable``
    headers: dict[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class Migration:
    """A schema step.  Applied once, in its own transaction, recorded by plugin + version.

    ``run(tx)``, when given, runs after ``sql`` in the same transaction: for data SQL cannot
    compute (a sort key made by Python).  It gets the writer's transaction (``WriteTx``).
    """

    version: int
    name: str
    sql: str
    run: Callable[[Any], None] | None = None


@dataclass(frozen=True, kw_only=True)
class JobType:
    """A namespaced job type (``assets.bulk_import``): what its input looks like and who runs
    it.

    With a ``handler`` it runs in process: ``await handler(ctx)`` with a
    :class:`ff_plugin_sdk.jobs.JobContext`; what it returns is the job's ``result``.  Without
    one it runs out of process: a runner claims it over HTTP (``POST /v1/jobs/claim``).
    """

    name: str
    summary: str = ""
    handler: Callable[..., Awaitable[Any]] | None = None
    #: a msgspec type the job's ``input`` is decoded into (422 naming the field at
    #: ``POST /v1/jobs``); None: any JSON object
    input_schema: Any = None
    #: how many jobs of this type may run at once (None: only the global limit)
    concurrency: int | None = None
    #: tries before a job that keeps failing (or whose runner keeps vanishing) is failed
    max_attempts: int = 3
    #: ``async check(input)``: refuses an input the schema cannot judge (a folder that does
    #: not exist) by raising an ``ff_plugin_sdk`` error, before the job is queued
    check: Callable[[Any], Awaitable[None]] | None = None

    @property
    def in_process(self) -> bool:
        return self.handler is not None


@dataclass(frozen=True, kw_only=True)
class AssetKind:
    """A namespaced asset kind (``image.original``, ``model.lora``)."""

    name: str
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class StorageProviderType:
    """A storage backend (``fs``, ``s3``): ``factory(context)`` builds a
    :class:`ff_plugin_sdk.storage.StorageProvider` from a
    :class:`ff_plugin_sdk.storage.StorageContext`."""

    name: str
    factory: Callable[..., Any]


@dataclass(frozen=True, kw_only=True)
class StatusLine:
    """One line of a plugin's state, shown on the System page and at
    ``/v1/system/status``: a feature that is off, degraded or busy says so here."""

    #: what it is about, e.g. ``"metadata extraction"``
    name: str
    #: ``"ok"``, ``"off"`` (not running, by choice or for want of something) or ``"error"``
    state: str
    message: str


@dataclass(frozen=True, kw_only=True)
class NavEntry:
    """A link in the UI's main navigation."""

    label: str
    href: str
    order: int = 100


@dataclass(frozen=True, kw_only=True)
class ShellWidget:
    """A small live element in the UI shell's top bar, on every signed-in page (running
    jobs, say): the shell fetches ``url`` (an HTML fragment, usually a UI page of the
    plugin) when a page loads and every ``refresh_seconds`` after."""

    id: str
    url: str
    refresh_seconds: float = 5.0
    order: int = 100


@dataclass(frozen=True, kw_only=True)
class UIPage:
    """A server-rendered page, mounted under ``/ui``; needs a signed-in session unless
    ``public`` (the login page)."""

    path: str
    endpoint: Callable[..., Awaitable[Any]]
    methods: Sequence[str] = ("GET",)
    name: str | None = None
    public: bool = False


@dataclass(frozen=True, kw_only=True)
class EntityTab:
    """A tab on the entity detail page.

    ``render(request, entity)`` returns the tab's HTML (a string); ``entity`` is the entity
    as a dict.  Tabs are shown in ``order``.
    """

    id: str
    label: str
    render: Callable[..., Awaitable[str]]
    order: int = 100


@dataclass(frozen=True, kw_only=True)
class StaticDir:
    """A folder of static files served publicly at ``/static/<name>/``."""

    name: str
    path: Path


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something that happened, as stored in the append-only events table."""

    id: int
    type: str
    created_at: str
    data: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None


def parse_event_id(text: str | None) -> int | None:
    """An event id from text (``Last-Event-ID``, a link); None unless it is one."""
    if not text or not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if value <= SQL_INT_MAX else None
