"""Thumbnails: every uploaded image gets two ``image.thumbnail`` assets derived from it
(1024 px JPEG, 256 px WebP, EXIF orientation applied), recorded on it as
``plugin_data.thumbnails = {"256": id, "1024": id}`` (or ``{"error": reason}``), made in the
background by a bounded worker; an entity without a primary thumbnail gets its first
image's.  ``GET /v1/assets/{id}/thumbnail`` redirects to one.

Services published: ``thumbnails.worker`` (:class:`Worker`: ``await join()`` waits until
the queued work is done) and ``thumbnails.thumbnailer`` (:class:`Thumbnailer`).

Settings (``plugins.thumbnails`` in ``config/core.json``): ``concurrency`` (default 2),
``max_source_bytes`` (default 100 MiB), ``max_pixels`` (default 200,000,000).
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from ff_plugin_sdk import ApiRoute, Event, Kernel, hookimpl
from plugins_builtin.thumbnails import api
from plugins_builtin.thumbnails.derive import Thumbnailer, wanted
from plugins_builtin.thumbnails.settings import Settings
from plugins_builtin.thumbnails.worker import Worker

SERVICE = "thumbnails.worker"
#: how long shutdown lets the images being worked on finish before cancelling them
STOP_GRACE_SECONDS = 10.0


def parts(kernel: Kernel) -> tuple[Thumbnailer, Worker]:
    """This kernel's thumbnailer and worker, made once (settings checked then)."""
    services = kernel.services
    if SERVICE not in services:
        thumbnailer = Thumbnailer(kernel, Settings.from_config(kernel.plugin_config(
            "thumbnails")))
        services["thumbnails.thumbnailer"] = thumbnailer
        services[SERVICE] = Worker(thumbnailer.derive, thumbnailer.settings.concurrency,
                                   thumbnailer.log, backlog=thumbnailer.missing)
    return services["thumbnails.thumbnailer"], services[SERVICE]


@hookimpl
def faceforge_routes(kernel: Kernel) -> list[ApiRoute]:
    parts(kernel)  # a bad setting stops the build with its message
    return api.routes(kernel)


@hookimpl
def faceforge_startup(kernel: Kernel) -> None:
    thumbnailer, worker = parts(kernel)
    # Pillow refuses more than twice this outright (and warns above it, which render()
    # refuses itself): raised so the configured limit is the one that holds
    limit = thumbnailer.settings.max_pixels
    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit
    worker.start()


@hookimpl
async def faceforge_shutdown(kernel: Kernel) -> None:
    await parts(kernel)[1].stop(STOP_GRACE_SECONDS)


@hookimpl
def faceforge_asset_ingested(kernel: Kernel, asset: dict[str, Any]) -> None:
    if wanted(asset):
        parts(kernel)[1].submit(asset["asset_id"])


@hookimpl
async def faceforge_event(kernel: Kernel, event: Event) -> None:
    if event.type == "asset.linked":
        await parts(kernel)[0].linked(event.data["asset_id"], event.data["entity_id"])
    elif event.type == "asset.deleted":
        await parts(kernel)[0].deleted(event.data["asset_id"])
