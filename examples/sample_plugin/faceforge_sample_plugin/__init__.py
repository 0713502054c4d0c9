"""A third-party FaceForge plugin: found through its entry point, importing only the SDK.

It adds ``GET /v1/plugins/sample/hello``, the ``sample_greetings`` table, the
``sample.greet`` (in process) and ``sample.render`` (out of process) job types, a "Sample"
tab on the entity page, and an event subscriber that writes every event it is told about
into ``sample_greetings``.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

import msgspec

from ff_plugin_sdk import ApiRoute, EntityTab, Event, JobType, Kernel, Migration, hookimpl


class Greeting(msgspec.Struct, kw_only=True):
    event_id: int
    event_type: str


class Hello(msgspec.Struct, kw_only=True):
    message: str
    #: the events this plugin's subscriber has written down, oldest first
    greetings: list[Greeting]


async def _greet_job(*args: Any, **kwargs: Any) -> dict[str, str]:
    return {"greeting": "hello"}


def _tab(kernel: Kernel) -> Any:
    async def render(request: Any, entity: dict[str, Any]) -> str:
        # a tab returns HTML: escape whatever came from the user or the settings
        greeting = kernel.plugin_config("sample").get("greeting", "Hello")
        return (f"<p>{html.escape(greeting)} from the sample plugin, "
                f"{html.escape(entity.get('display_name', ''))}!</p>")

    return render


@hookimpl
def faceforge_migrations() -> list[Migration]:
    return [
        Migration(
            version=1,
            name="greetings",
            sql="""
            CREATE TABLE sample_greetings (
                event_id INTEGER PRIMARY KEY,
                event_type TEXT NOT NULL
            );
            """,
        )
    ]


@hookimpl
def faceforge_routes(kernel: Kernel) -> list[ApiRoute]:
    async def hello(request: Any) -> Hello:
        """Say hello, with the events the sample subscriber has seen."""
        rows = await kernel.db.fetchall(
            "SELECT event_id, event_type FROM sample_greetings ORDER BY event_id")
        return Hello(message="hello from the sample plugin",
                     greetings=[Greeting(event_id=r["event_id"], event_type=r["event_type"])
                                for r in rows])

    return [ApiRoute(path="/plugins/sample/hello", endpoint=hello, scope="system:read",
                     response=Hello, tags=["sample"])]


@hookimpl
def faceforge_job_types(kernel: Any) -> list[JobType]:
    return [JobType(name="sample.greet", summary="Say hello", handler=_greet_job),
            # no handler: an out-of-process runner claims it over HTTP
            JobType(name="sample.render", summary="Render something, out of process")]


@hookimpl
def faceforge_ui_entity_tabs(kernel: Kernel) -> list[EntityTab]:
    return [EntityTab(id="sample", label="Sample", render=_tab(kernel), order=900)]


@hookimpl
async def faceforge_event(kernel: Kernel, event: Event) -> None:
    # Delivery is at least once: writing the same event down twice changes nothing.
    # ``plugins.sample.greeting_delay_seconds`` in core.json plays a slow subscriber.
    delay = float(kernel.plugin_config("sample").get("greeting_delay_seconds", 0))
    if delay > 0:
        await asyncio.sleep(delay)
    await kernel.db.write(lambda tx: tx.execute(
        "INSERT OR IGNORE INTO sample_greetings (event_id, event_type) VALUES (?, ?)",
        (event.id, event.type)))
