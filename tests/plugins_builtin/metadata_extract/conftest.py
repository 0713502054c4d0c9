"""Metadata-extraction fixtures: a Core with the real ExifTool (Debian's
``libimage-exiftool-perl``), uploads, and waiting for the worker without sleeping blind."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kernel.config import Settings, load_settings
from kernel.services import Kernel
from plugins_builtin.metadata_extract.worker import Extractor
from tests.conftest import running
from tests.kernel.conftest import eventually

WORKER = "metadata_extract.worker"
SETTLE_SECONDS = 60.0


@pytest.fixture(scope="session")
def exiftool() -> Path:
    """The real ExifTool; missing is an error (CI installs it), never a skip."""
    found = shutil.which("exiftool")
    assert found, "exiftool is not installed (Debian: libimage-exiftool-perl; see .ci/run)"
    return Path(found)


def configure(home: Path, *, tools: dict[str, Any] | None = None,
              plugin: dict[str, Any] | None = None, disabled: str = "thumbnails",
              **sections: Any) -> Settings:
    """Write ``config/core.json`` and load it.  The thumbnails plugin is off unless asked:
    its derived images are not what these tests are about."""
    config: dict[str, Any] = dict(sections)
    if tools is not None:
        config["tools"] = tools
    if plugin is not None:
        config["plugins"] = {"metadata_extract": plugin}
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "core.json").write_text(json.dumps(config), "utf-8")
    return load_settings(home, env={"FACEFORGE_DISABLE_PLUGINS": disabled})


@dataclass
class Core:
    client: httpx.AsyncClient
    kernel: Kernel
    settings: Settings

    @property
    def worker(self) -> Extractor:
        return self.kernel.services[WORKER]

    async def upload(self, data: bytes, filename: str, **fields: str) -> dict[str, Any]:
        r = await self.client.post("/v1/assets/upload", files={"file": (filename, data)},
                                   data=fields)
        assert r.status_code == 201, r.text
        return r.json()

    async def asset(self, asset_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/v1/assets/{asset_id}")
        assert r.status_code == 200, r.text
        return r.json()

    async def status(self) -> dict[str, Any]:
        r = await self.client.get("/v1/metadata-extract/status")
        assert r.status_code == 200, r.text
        return r.json()

    async def settled(self) -> None:
        """The worker has nothing queued or in flight (and its start-up work is over)."""
        await asyncio.wait_for(self.worker.idle(), SETTLE_SECONDS)

    async def extracted(self, data: bytes, filename: str, **fields: str) -> dict[str, Any]:
        """Upload, then the record once the worker has been through it: the upload's own
        hook queues it; queueing it here too (a no-op if it is queued or done) means the
        worker's going idle says it is done."""
        asset = await self.upload(data, filename, **fields)
        self.worker.enqueue(asset["asset_id"])
        await self.settled()
        return await self.asset(asset["asset_id"])

    def log_lines(self) -> list[dict[str, Any]]:
        path = self.settings.paths.logs_dir / "core.log"
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


StartCore = Callable[..., Awaitable[Any]]


@pytest.fixture
def start_core(make_app: Any, settings: Settings) -> Callable[..., Any]:
    """``async with start_core(settings) as core``: a running Core (lifespan and all)."""

    @asynccontextmanager
    async def start(chosen: Settings | None = None) -> AsyncIterator[Core]:
        chosen = chosen or settings
        app = make_app(settings=chosen)
        async with running(app, chosen.install_token) as client:
            yield Core(client, app.state.kernel, chosen)

    return start


def alive(pid: int) -> bool:
    """Whether a process (ExifTool) still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def poll(check: Callable[[], Awaitable[Any]], timeout: float = SETTLE_SECONDS,
               interval: float = 0.02) -> Any:
    """``check()``'s first truthy result; fails past the deadline."""
    return await eventually(check, timeout=timeout, interval=interval)
