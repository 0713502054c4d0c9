"""Jobs: a durable queue of long work (spec §3.3, §7.4) with priorities, progress and
append-only logs.  Job types come from plugins (``faceforge_job_types``); in-process ones
run in Core's worker pool, the others are claimed over HTTP by out-of-process runners
holding a lease.

Service published for other plugins: ``jobs.queue`` (:class:`JobQueue`, see
:class:`ff_plugin_sdk.jobs.JobQueue`).

Settings (``plugins.jobs`` in ``config/core.json``): ``workers`` (default 4: in-process jobs
running at once) and ``concurrency`` (``{"<job type>": n}``, overriding a type's own limit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ff_plugin_sdk import (
    ApiRoute,
    Kernel,
    Migration,
    NavEntry,
    Scope,
    ShellWidget,
    StaticDir,
    StatusLine,
    UIPage,
    hookimpl,
)
from plugins_builtin.jobs import api, ui
from plugins_builtin.jobs.queue import JobQueue
from plugins_builtin.jobs.schema import MIGRATIONS

DEFAULT_WORKERS = 4


def settings(kernel: Kernel) -> dict[str, Any]:
    """``plugins.jobs``, checked: a bad value is a startup error naming the key."""
    config = kernel.plugin_config("jobs")
    if unknown := sorted(set(config) - {"workers", "concurrency"}):
        raise ValueError(f"plugins.jobs has no setting {unknown[0]!r}; the settings are "
                         f"'workers' and 'concurrency'")
    workers = config.get("workers", DEFAULT_WORKERS)
    if type(workers) is not int or workers < 1:
        raise ValueError(f"plugins.jobs.workers must be a whole number of at least 1, "
                         f"got {workers!r}")
    concurrency = config.get("concurrency", {})
    if not isinstance(concurrency, dict) or any(
            type(n) is not int or n < 1 for n in concurrency.values()):
        raise ValueError("plugins.jobs.concurrency must map job types to whole numbers of "
                         f"at least 1, got {concurrency!r}")
    return {"workers": workers, "concurrency": concurrency}


def queue_of(kernel: Kernel) -> JobQueue:
    """This kernel's queue, made once and published as ``jobs.queue``."""
    if "jobs.queue" not in kernel.services:
        kernel.services["jobs.queue"] = JobQueue(kernel, settings(kernel))
    queue: JobQueue = kernel.services["jobs.queue"]
    return queue


@hookimpl
def faceforge_scopes() -> list[Scope]:
    return [Scope(name="jobs:read", description="list jobs, read their logs and follow them"),
            Scope(name="jobs:write", description="start, cancel, retry and re-prioritise jobs"),
            Scope(name="jobs:run", description="claim jobs as an out-of-process runner and "
                                               "report their progress and outcome")]


@hookimpl
def faceforge_migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def faceforge_routes(kernel: Kernel) -> list[ApiRoute]:
    return api.routes(kernel, queue_of(kernel))


@hookimpl
async def faceforge_startup(kernel: Kernel) -> None:
    await queue_of(kernel).start(kernel.job_types)


@hookimpl
def faceforge_ready(kernel: Kernel) -> None:
    # handlers use other plugins' services: they run once every plugin has started
    queue_of(kernel).run_pool()


@hookimpl
async def faceforge_shutdown(kernel: Kernel) -> None:
    await queue_of(kernel).stop()


@hookimpl
async def faceforge_status(kernel: Kernel) -> list[StatusLine]:
    queue = queue_of(kernel)
    counts = await queue.store.counts()
    workers = queue.pool.workers if queue.pool is not None else 0
    return [StatusLine(name="jobs", state="ok",
                       message=f"{counts['running']} running, {counts['queued']} queued; "
                               f"{workers} in-process workers")]


@hookimpl
def faceforge_ui_templates() -> list[Path]:
    return [Path(__file__).parent / "templates"]


@hookimpl
def faceforge_static_dirs() -> list[StaticDir]:
    return [StaticDir(name="jobs", path=Path(__file__).parent / "static")]


@hookimpl
def faceforge_ui_nav(kernel: Kernel) -> list[NavEntry]:
    return [NavEntry(label="Jobs", href="/ui/jobs", order=40)]


@hookimpl
def faceforge_ui_shell_widgets(kernel: Kernel) -> list[ShellWidget]:
    return [ShellWidget(id="jobs", url="/ui/jobs/indicator", refresh_seconds=3)]


@hookimpl
def faceforge_ui_pages(kernel: Kernel) -> list[UIPage]:
    return ui.pages(kernel, queue_of(kernel))
