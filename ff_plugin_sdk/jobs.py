"""What an in-process job handler receives, and how it says a job failed.

A handler is ``async def handler(ctx: JobContext) -> result``; it is registered with a
:class:`ff_plugin_sdk.types.JobType`.  It is cancelled through a cancel scope, so a cancel
takes effect at its next ``await``: keep blocking work in worker threads in short pieces,
and leave a consistent state in ``finally`` blocks (which run shielded work with
``anyio.CancelScope(shield=True)``).

Other plugins start jobs through the ``jobs.queue`` service (:class:`JobQueue`).
"""

from __future__ import annotations

from typing import Any, Protocol

from ff_plugin_sdk.kernel import Kernel

#: job log levels, least to most severe
LEVELS = ("debug", "info", "warning", "error")


class JobFailed(Exception):
    """Raised by a handler: the job fails with this message.  ``retryable`` jobs are
    queued again until their ``max_attempts`` are used up; any other exception counts as
    retryable too (it may be transient), a ``JobFailed`` by default does not."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class JobContext(Protocol):
    """One run of one job, as its handler sees it."""

    job_id: str
    type: str
    #: the input, decoded with the type's ``input_schema`` (a dict without one)
    input: Any
    input_asset_id: str | None
    #: this run's number, from 1; more than 1 after a retry or a recovery
    attempt: int
    max_attempts: int
    correlation_id: str | None
    kernel: Kernel

    def progress(self, percent: float | None = None, step: str | None = None,
                 **counters: int | float) -> None:
        """Report progress (0-100), the current step and counters (``files=``,
        ``bytes=``); cheap to call often: the newest values are saved a few times a
        second and streamed to watchers."""

    def log(self, level: str, message: str, **fields: Any) -> None:
        """Append a line to the job's log (``debug``, ``info``, ``warning``, ``error``);
        lines are saved in batches through one write, in order."""

    def add_output(self, *asset_ids: str) -> None:
        """Name assets this job produced (its ``output_asset_ids``)."""

    async def flush(self) -> None:
        """Save pending log lines and progress now (done anyway a few times a second
        and when the job ends)."""


class JobQueue(Protocol):
    """The ``jobs.queue`` service: start jobs and read them from another plugin."""

    async def submit(self, type: str, input: dict[str, Any] | None = None, *,
                     priority: int = 0, input_asset_id: str | None = None,
                     max_attempts: int | None = None,
                     correlation_id: str | None = None) -> dict[str, Any]:
        """Queue a job (its input validated as ``POST /v1/jobs`` does); returns the job."""

    async def get(self, job_id: str) -> dict[str, Any]: ...
