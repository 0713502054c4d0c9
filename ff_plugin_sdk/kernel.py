"""What an in-process plugin may use of the running Core: the typed :class:`Kernel` protocol.

Every hook that takes ``kernel`` receives an object with this shape.  Built-in plugins and
the UI shell use nothing else of the server (a test enforces it), so a third-party plugin
can do whatever a built-in one does.  Types only: importing this pulls in no server code.

The write path (DESIGN §3a): a write transaction is one synchronous function handed to
:meth:`Database.write`.  It runs on the single writer thread inside ``BEGIN IMMEDIATE ...
COMMIT``; the caller awaits it as one operation.  The function

- runs all of the transaction's statements through ``tx`` and records its events with
  :meth:`WriteTx.event` (an event exists exactly when the change does);
- rolls everything back by raising (the exception reaches the caller unchanged);
- may be run more than once (when a transaction grouped with it fails at COMMIT), so it
  touches nothing but ``tx`` and returns what it computed;
- must not await, sleep or do I/O other than SQL: it holds the only writer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from ff_plugin_sdk.plugins import PluginView
from ff_plugin_sdk.storage import Storage
from ff_plugin_sdk.types import EntityTab, Event, JobType, NavEntry, Principal, ShellWidget

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]


class Row(Protocol):
    """A result row: by column name (``row["id"]``) or position."""

    def __getitem__(self, key: str | int) -> Any: ...
    def keys(self) -> list[str]: ...


class WriteTx(Protocol):
    """The writer connection inside one transaction (synchronous: no ``await``)."""

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns ``lastrowid`` (for an INSERT)."""
    def changes(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns how many rows it changed."""
    def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...
    def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...
    def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...
    def event(self, type: str, data: dict[str, Any]) -> int:
        """Append an event in this transaction; returns its id."""
    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` on the event loop once the transaction has committed."""


class Database(Protocol):
    """SQLite: async reads over a pool of readers, writes as one-hop transactions."""

    @property
    def sqlite_version(self) -> str: ...
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...
    async def write(self, fn: Callable[[WriteTx], T]) -> T:
        """Run ``fn(tx)`` as one transaction on the writer thread; returns its result."""


class EventLog(Protocol):
    """The append-only event log (write events with :meth:`WriteTx.event`)."""

    last_id: int

    async def list(self, after: int = 0, type_prefix: str | None = None, limit: int = 100,
                   *, before: int | None = None) -> list[Event]:
        """Oldest first after ``after``; with ``before``, the newest below it, newest first."""


class Templates(Protocol):
    """Server-rendered pages (Jinja) and the htmx conventions of the UI."""

    def render(self, request: Any, name: str, context: dict[str, Any] | None = None, *,
               block: str | None = None, status: int = 200,
               headers: dict[str, str] | None = None) -> Any:
        """The whole page, or only ``block`` when htmx asks for a fragment."""
    def render_string(self, request: Any, name: str, context: dict[str, Any],
                      block: str | None = None) -> str: ...
    def is_htmx(self, request: Any) -> bool:
        """A partial swap (not a boosted navigation, not a history restore)."""
    def redirect(self, request: Any, url: str) -> Any:
        """After a form post: 303, or ``HX-Redirect`` for htmx."""


class Auth(Protocol):
    """Who is calling, and UI sign-in."""

    session_cookie: str
    session_max_age: int

    def principal(self, request: Any) -> Principal | None: ...
    def still_valid(self, principal: Principal) -> bool:
        """False once the credential stopped working (rotated, signed out, expired,
        revoked): a long-lived response (an event stream) ends then."""
    def is_install_token(self, token: str) -> bool:
        """Constant-time check of a token typed into the sign-in form."""
    async def start_session(self) -> tuple[str, str]:
        """A new UI session: (cookie value, CSRF token)."""
    async def end_session(self, session_id: str) -> None: ...
    async def check_form_csrf(self, request: Any) -> None:
        """Raise 403 unless a form post made with a session cookie carries its token."""


class PluginRegistry(Protocol):
    """Every installed plugin and its state: what the plugins page shows and changes."""

    def views(self) -> list[PluginView]: ...
    def get(self, plugin_id: str, *, tail: bool = False) -> PluginView:
        """One plugin (404 ``plugin_not_found``); ``tail`` adds its runner's newest log lines."""
    async def enable(self, plugin_id: str, accepted: list[str]) -> PluginView:
        """409 ``consent_required`` unless ``accepted`` covers what it asks for; 409
        ``plugin_error`` for a plugin in error."""
    async def disable(self, plugin_id: str) -> PluginView:
        """409 ``plugin_required`` for a plugin Core cannot work without."""
    def config(self, plugin_id: str) -> dict[str, Any]: ...
    async def set_config(self, plugin_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """422 ``invalid_config`` (details: each failing path) unless ``values`` match the
        plugin's ``config_schema``."""
    async def rescan(self) -> list[PluginView]:
        """Pick up plugin folders added, changed or removed."""


@runtime_checkable
class Kernel(Protocol):
    """One running Core, as plugins see it."""

    version: str
    db: Database
    events: EventLog
    templates: Templates
    auth: Auth
    #: the storage providers and the upload routing rules
    storage: Storage
    #: the UI's main navigation and entity tabs, from every plugin, in order
    nav: list[NavEntry]
    entity_tabs: list[EntityTab]
    shell_widgets: list[ShellWidget]
    #: every plugin's job types by name (``faceforge_job_types``), filled at start
    job_types: dict[str, JobType]
    #: services plugins publish for each other, keyed by ``<plugin>.<name>``
    services: dict[str, Any]
    #: renders an error page inside the layout; set by the UI shell
    error_page: Callable[..., Any] | None
    #: every installed plugin, in or out of process, and its state
    registry: PluginRegistry
    #: an ``asyncio.Event`` set when Core begins to stop: end long waits (long polls) then
    stopping: Any

    @property
    def home(self) -> Path: ...
    @property
    def tools_dir(self) -> Path:
        """Where users put external programs (``<home>/tools`` unless configured)."""
    def tools_config(self) -> dict[str, Any]:
        """The ``tools`` section of ``config/core.json`` (``exiftool_enabled``,
        ``exiftool_path``)."""
    def now(self) -> str:
        """The current time as the one timestamp format (RFC 3339, UTC, ``...Z``)."""
    def plugin_config(self, plugin: str) -> dict[str, Any]:
        """The ``plugins.<plugin>`` section of ``config/core.json`` (empty if none)."""
    def logger(self, plugin: str) -> logging.Logger:
        """The plugin's logger: JSON lines with correlation ids, secrets redacted."""
    def correlation_id(self) -> str | None:
        """The correlation id of the work in progress (the request's ``X-Correlation-ID``)."""
    def correlated(self, correlation_id: str | None) -> AbstractContextManager[None]:
        """Carry ``correlation_id`` into every log line and event written inside the block
        (a job's work, done long after the request that asked for it)."""
    def asset_ingested(self, asset: dict[str, Any]) -> None:
        """Tell every plugin (``faceforge_asset_ingested``) that an asset's bytes were
        stored.  Runs in the background, off the request path; failures are logged."""
    async def status(self) -> list[dict[str, str]]:
        """Every plugin's ``faceforge_status`` lines (``plugin``, ``name``, ``state``,
        ``message``)."""
    def system_info(self) -> dict[str, Any]:
        """Version, address, paths, plugins, routes, scopes: what ``/v1/system/info`` says."""
