"""The plugin registry: every installed plugin, in or out of process, and its state.

A plugin is ``enabled``, ``disabled`` or in ``error`` (its manifest or package cannot be
used; the reason says why).  Built-ins start enabled, third-party plugins disabled until a
user enables them, agreeing to the permissions their manifest asks for; the choice is kept
in ``plugin_state`` and survives restarts.  Enabling and disabling take effect at once:

- in process: the plugin's acting hooks (startup, events, jobs, UI entries, status, ...)
  are called only while it is enabled, and its routes and pages answer 404
  ``plugin_disabled`` otherwise (they are mounted once, so enabling needs no restart);
- out of process: enabling issues the plugin a token holding exactly its manifest's API
  scopes (stored hashed; a fresh one for each start of its runner) and starts the runner;
  disabling revokes the token and stops the runner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from ff_plugin_sdk.errors import Conflict, NotFound, ValidationFailed
from ff_plugin_sdk.manifest import Manifest
from ff_plugin_sdk.plugins import Consent, PluginView, RunnerView
from kernel import plugin_sources
from kernel.clock import utc_now
from kernel.migrations import apply_migrations
from kernel.plugin_sources import Found

if TYPE_CHECKING:
    from kernel.runners import RunnerProcess
    from kernel.services import Kernel

log = logging.getLogger("faceforge.plugins")
#: builds a plugin's runner process, given how to issue its token for each start
RunnerFactory = Callable[["Record", Callable[["Record"], Awaitable[str]]], "RunnerProcess"]
#: the plugins Core cannot work without
REQUIRED = frozenset({"entities", "assets", "jobs", "ui", "storage", "plugin_admin"})
#: how often the plugins folder is checked for new or changed manifests
WATCH_SECONDS = 2.0
LOG_TAIL_LINES = 50


@dataclass
class Record:
    found: Found
    enabled: bool
    consent: Consent | None = None
    config: dict[str, Any] = field(default_factory=dict)
    #: why Core turned it off by itself (a new version asking for more)
    note: str | None = None
    runner: RunnerProcess | None = None
    #: where its runner serves HTTP (``http://127.0.0.1:<port>``), while it runs
    base_url: str | None = None

    @property
    def id(self) -> str:
        return self.found.id

    @property
    def manifest(self) -> Manifest:
        return self.found.manifest

    @property
    def state(self) -> str:
        if self.found.error is not None:
            return "error"
        return "enabled" if self.enabled else "disabled"

    @property
    def third_party(self) -> bool:
        return self.found.kind != "builtin"

    def needs_consent(self) -> list[str]:
        if not self.third_party:
            return []
        agreed = set(self.consent.permissions) if self.consent else set()
        return [p for p in self.manifest.permissions if p not in agreed]


class PluginRegistry:
    """Finds plugins, keeps their state, and turns them on and off."""

    def __init__(self, kernel: Kernel, runner_factory: RunnerFactory) -> None:
        self.kernel = kernel
        self.outside = OutOfProcess(kernel, runner_factory)
        self.records: list[Record] = []
        self._lock = asyncio.Lock()
        self._signature: tuple[tuple[str, int, int], ...] = ()
        self._watcher: asyncio.Task[None] | None = None

    # -- reading ---------------------------------------------------------------------------
    def find(self, plugin_id: str) -> Record:
        for record in self.records:
            if record.id == plugin_id:
                return record
        raise NotFound(f"no plugin {plugin_id!r} is installed", code="plugin_not_found")

    def active(self, plugin_id: str) -> bool:
        """Whether the plugin's routes, pages and hooks work now."""
        return plugin_id not in self.kernel.hooks.inactive

    def view(self, record: Record, *, tail: bool = False) -> PluginView:
        m = record.manifest
        runner = None
        if record.runner is not None:
            runner = msgspec.convert(msgspec.structs.asdict(record.runner.status), RunnerView)
            if runner.message in ("", runner.state):  # nothing the state does not say
                runner.message = None
            if tail:
                runner.log_tail = record.runner.tail(LOG_TAIL_LINES)
        reason = record.found.error or (record.note if not record.enabled else None)
        return PluginView(
            id=record.id, name=m.name, version=m.version, kind=record.found.kind,
            state=record.state, reason=reason, description=m.description,  # type: ignore[arg-type]
            required=record.id in REQUIRED and not record.third_party,
            capabilities=list(m.capabilities), permissions=list(m.permissions),
            scopes=m.scopes, needs=m.needs, needs_consent=record.needs_consent(),
            consent=record.consent, job_types=list(m.job_types),
            routes_prefix=m.routes_prefix, config_schema=m.config_schema,
            source=record.found.source, runner=runner)

    def views(self) -> list[PluginView]:
        return [self.view(r) for r in self.records]

    def get(self, plugin_id: str, *, tail: bool = False) -> PluginView:
        return self.view(self.find(plugin_id), tail=tail)

    def config(self, plugin_id: str) -> dict[str, Any]:
        """``plugins.<id>`` of core.json, overlaid by what was saved through the API."""
        stored = next((r.config for r in self.records if r.id == plugin_id), {})
        return {**self.kernel.config.plugins.get(plugin_id, {}), **stored}

    # -- start and stop --------------------------------------------------------------------
    async def load(self) -> None:
        """Discover every plugin and apply the saved states (after the kernel's migrations,
        before the plugins')."""
        rows = {r["plugin_id"]: r for r in await self.kernel.db.fetchall(
            "SELECT plugin_id, enabled, consent, config, note FROM plugin_state")}
        found = plugin_sources.in_process(self.kernel.plugins, self.kernel.version)
        schemas = await self.kernel.hooks.config_schemas()  # built-ins declare theirs by hook
        for builtin in found:
            if builtin.kind == "builtin" and builtin.id in schemas:
                builtin.manifest.config_schema = schemas[builtin.id]
        found += self._scan(found)
        self.records = [self._record(f, rows.get(f.id)) for f in found]
        self._sync_inactive()

    def _scan(self, in_process: list[Found]) -> list[Found]:
        plugins_dir = self.kernel.paths.plugins_dir
        self._signature = plugin_sources.folder_signature(plugins_dir)
        return plugin_sources.out_of_process(plugins_dir, self.kernel.version,
                                             [f.id for f in in_process])

    def _record(self, found: Found, row: Any) -> Record:
        if row is None:
            return Record(found, enabled=found.kind == "builtin")
        consent = msgspec.json.decode(row["consent"], type=Consent | None)
        record = Record(found, enabled=bool(row["enabled"]), consent=consent,
                        config=msgspec.json.decode(row["config"]), note=row["note"])
        if record.enabled and record.needs_consent():
            record.enabled = False
            record.note = (f"version {found.manifest.version} asks for more than was agreed "
                           f"to ({', '.join(record.needs_consent())}): enable it again to "
                           f"agree")
        return record

    def _sync_inactive(self) -> None:
        self.kernel.hooks.inactive = {r.id for r in self.records
                                      if r.found.kind != "out_of_process" and r.state != "enabled"}

    async def start(self) -> None:
        """Start the runners of enabled out-of-process plugins; watch the plugins folder."""
        for record in self.records:
            if record.found.kind == "out_of_process" and record.state == "enabled":
                try:
                    await self.outside.start(record)
                except Exception:  # one plugin's runner must not keep Core from starting
                    log.exception("could not start the runner of plugin %s", record.id)
        self._watcher = asyncio.create_task(self._watch(), name="faceforge-plugins-watch")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await asyncio.gather(*(self.outside.stop(r) for r in self.records if r.runner))

    # -- enable / disable ----------------------------------------------------------------
    async def enable(self, plugin_id: str, accepted: list[str]) -> PluginView:
        async with self._lock:
            record = self.find(plugin_id)
            if record.found.error is not None:
                raise Conflict(f"plugin {plugin_id!r} cannot be enabled: {record.found.error}",
                               code="plugin_error")
            missing = [p for p in record.needs_consent() if p not in accepted]
            if missing:
                raise Conflict(
                    f"enabling {plugin_id!r} needs your agreement to: {', '.join(missing)}; "
                    f"send them in accept_permissions", code="consent_required",
                    details=[{"permission": p, "kind": "need" if p in record.manifest.needs
                              else "scope"} for p in missing])
            if record.third_party and (record.needs_consent() or record.consent is None):
                record.consent = Consent(version=record.manifest.version,
                                         permissions=list(record.manifest.permissions),
                                         at=utc_now())
            if record.enabled:
                await self._save(record, None)
                return self.view(record)
            record.enabled, record.note = True, None
            if record.found.kind == "out_of_process":
                await self._save(record, "plugin.enabled")
                await self.outside.start(record)
            else:
                await self._start_in_process(record)
            await self.kernel.refresh_contributions()
            log.info("plugin %s %s enabled", record.id, record.manifest.version)
            return self.view(record)

    async def _start_in_process(self, record: Record) -> None:
        """Its migrations, then its startup; a failure leaves it disabled, saying why."""
        try:
            await apply_migrations(self.kernel.db,
                                   await self.kernel.hooks.migrations(only=record.id))
            self._sync_inactive()
            await self.kernel.plugin_started(record.id)
        except Exception as exc:
            log.exception("plugin %s failed to start", record.id)
            record.enabled, record.note = False, f"failed to start: {exc}"
            self._sync_inactive()
            await self.kernel.plugin_stopped(record.id)
            await self._save(record, None)
            raise Conflict(f"plugin {record.id!r} failed to start and stays disabled: {exc}",
                           code="plugin_failed") from exc
        await self._save(record, "plugin.enabled")

    async def disable(self, plugin_id: str) -> PluginView:
        async with self._lock:
            record = self.find(plugin_id)
            if record.id in REQUIRED and not record.third_party:
                raise Conflict(f"FaceForge cannot work without the {plugin_id!r} plugin: it "
                               f"cannot be disabled", code="plugin_required")
            if not record.enabled:
                return self.view(record)
            record.enabled = False
            await self._turn_off(record)
            await self._save(record, "plugin.disabled")
            log.info("plugin %s disabled", record.id)
            return self.view(record)

    async def _turn_off(self, record: Record) -> None:
        """Routes and hooks stop at once; then the runner and token go, or the in-process
        plugin is told to shut down."""
        if record.found.kind == "out_of_process":
            await self.kernel.refresh_contributions()
            await self.outside.stop(record)
        else:
            self._sync_inactive()
            await self.kernel.refresh_contributions()
            await self.kernel.plugin_stopped(record.id)

    async def _save(self, record: Record, event: str | None) -> None:
        consent = msgspec.json.encode(record.consent).decode()
        config = msgspec.json.encode(record.config).decode()
        now = utc_now()

        def save(tx: Any) -> None:
            tx.execute(
                "INSERT INTO plugin_state (plugin_id, enabled, consent, config, note,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (plugin_id) DO UPDATE SET"
                " enabled = excluded.enabled, consent = excluded.consent,"
                " config = excluded.config, note = excluded.note,"
                " updated_at = excluded.updated_at",
                (record.id, int(record.enabled), consent, config, record.note, now))
            if event is not None:
                tx.event(event, {"plugin_id": record.id, "version": record.manifest.version})

        await self.kernel.db.write(save)

    # -- configuration -------------------------------------------------------------------
    async def set_config(self, plugin_id: str, values: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import Draft202012Validator

        async with self._lock:
            record = self.find(plugin_id)
            schema = record.manifest.config_schema
            if schema is not None:
                errors = sorted(Draft202012Validator(schema).iter_errors(values),
                                key=lambda e: list(e.absolute_path))
                if errors:
                    raise ValidationFailed(
                        f"the settings of {plugin_id!r} do not match its schema: "
                        f"{errors[0].message}", code="invalid_config",
                        details=[{"path": _json_path(e.absolute_path), "message": e.message}
                                 for e in errors])
            record.config = values
            await self._save(record, "plugin.config_changed")
            return self.config(plugin_id)

    # -- rescan ----------------------------------------------------------------------------
    async def rescan(self) -> list[PluginView]:
        """Pick up plugin folders added, changed or removed since the last look."""
        async with self._lock:
            in_process = [r for r in self.records if r.found.kind != "out_of_process"]
            before = {r.id: r for r in self.records if r.found.kind == "out_of_process"}
            rows = {r["plugin_id"]: r for r in await self.kernel.db.fetchall(
                "SELECT plugin_id, enabled, consent, config, note FROM plugin_state")}
            folders: list[Record] = []
            for found in self._scan([r.found for r in in_process]):
                old = before.pop(found.id, None)  # a duplicate finds it taken: None
                if old is not None and old.found == found:
                    folders.append(old)
                    continue
                record = self._record(found, rows.get(found.id))
                if old is not None and old.runner is not None:
                    await self.outside.stop(old)
                folders.append(record)
                if record.state == "enabled":
                    await self.outside.start(record)
                elif old is not None and old.enabled and record.note:
                    await self._save(record, "plugin.disabled")
            for gone in before.values():
                if gone.runner is not None:
                    await self.outside.stop(gone)
            self.records = in_process + folders
            await self.kernel.refresh_contributions()
            return self.views()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            signature = plugin_sources.folder_signature(self.kernel.paths.plugins_dir)
            if signature != self._signature:
                try:
                    await self.rescan()
                except Exception:
                    log.exception("rescanning the plugins folder failed")


def _json_path(parts: Any) -> str:
    """``["training", "steps", 0]`` -> ``$.training.steps[0]`` (as msgspec names paths)."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


class OutOfProcess:
    """Starts and stops the runners of out-of-process plugins, each start with a fresh
    token holding the manifest's API scopes (and, for a runner serving HTTP, a fresh port)."""

    def __init__(self, kernel: Kernel, runner_factory: RunnerFactory) -> None:
        self.kernel = kernel
        self.runner_factory = runner_factory

    async def issue_token(self, record: Record) -> str:
        name = f"plugin:{record.id}"
        tokens = self.kernel.scoped_tokens
        await tokens.revoke(name)
        known = self.kernel.scopes.names()
        unknown = [s for s in record.manifest.scopes if s not in known]
        if unknown:
            log.warning("plugin %s asks for scopes no installed plugin declares: %s",
                        record.id, ", ".join(unknown))
        return await tokens.issue(name, [s for s in record.manifest.scopes if s in known])

    async def start(self, record: Record) -> None:
        if record.manifest.entrypoints.runner is None or record.found.folder is None:
            await self.issue_token(record)  # nothing to run: a token for external use
            return
        if record.runner is None:  # a changed manifest is a new record, with a new runner
            record.runner = self.runner_factory(record, self.issue_token)
        await record.runner.start()

    async def stop(self, record: Record) -> None:
        """The token goes first (the runner's calls fail from now on), then the process."""
        await self.kernel.scoped_tokens.revoke(f"plugin:{record.id}")
        if record.runner is not None:
            await record.runner.stop()
