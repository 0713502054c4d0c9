"""The Jobs pages (placeholder until the UI lands)."""

from __future__ import annotations

from ff_plugin_sdk import Kernel, UIPage
from plugins_builtin.jobs.queue import JobQueue


def pages(kernel: Kernel, queue: JobQueue) -> list[UIPage]:
    return []
