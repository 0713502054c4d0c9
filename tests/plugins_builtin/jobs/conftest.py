"""Jobs test helpers: a Core with the test job types (tests/plugins/job_types.py), the
jobs settings written before it starts, submitting and waiting for jobs (polling with a
deadline, never a blind sleep), reading logs and events, and a real Hypercorn server for
the event streams."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Sockets
from hypercorn.utils import wrap_app
from starlette.applications import Starlette

from kernel.config import Settings, load_settings
from kernel.server import hypercorn_config, listen_socket
from kernel.services import Kernel
from tests.conftest import running
from tests.kernel.conftest import eventually as eventually_within
from tests.plugins_builtin.assets.conftest import error_of  # noqa: F401 - for this folder

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"
# tests/plugins is not collected (norecursedirs); its modules are imported by name.
if str(PLUGINS_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGINS_DIR))

import job_types  # noqa: E402

JOBS = "/v1/jobs"
UNKNOWN_ID = "0" * 64
#: the bound on anything a test waits for
WAIT = 10.0
POLL = 0.05
#: the bound on Core stopping (its own bounds: the queue's 10 s wait for runs to end)
STOP_WITHIN = 15.0
FINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture
def jobs_config() -> dict[str, Any]:
    """``plugins.jobs`` for this test's Core (a module overrides it)."""
    return {}


def configure(home: Path, jobs: dict[str, Any]) -> Settings:
    """Write ``config/core.json`` with ``plugins.jobs`` and load it.  Thumbnails and metadata
    extraction are off: their background work is not what these tests are about."""
    config_dir = home / "config"
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = config_dir / "core.json"
    config = json.loads(path.read_text("utf-8")) if path.exists() else {}
    config.setdefault("plugins", {})["jobs"] = jobs
    path.write_text(json.dumps(config), "utf-8")
    return load_settings(home, env={"FACEFORGE_DISABLE_PLUGINS": "thumbnails,metadata_extract"})


@pytest.fixture
def settings(home: Path, jobs_config: dict[str, Any]) -> Settings:
    return configure(home, jobs_config)


@pytest.fixture(autouse=True)
def control() -> job_types.Control:
    """The test job types' gates and records, fresh for each test."""
    job_types.control.reset()
    return job_types.control


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    return make_app(extra_plugins=[("job_types", job_types)])


@asynccontextmanager
async def started(app: Starlette, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """``running``, but a Core that does not stop within STOP_WITHIN fails the test
    instead of hanging the suite."""
    stack = AsyncExitStack()
    client = await stack.enter_async_context(running(app, token))
    try:
        yield client
    finally:
        try:
            async with asyncio.timeout(STOP_WITHIN):
                await stack.aclose()
        except TimeoutError:
            pytest.fail(f"Core did not stop within {STOP_WITHIN}s")


@pytest.fixture
async def client(app: Starlette, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client (install token) on a running Core."""
    async with started(app, settings.install_token) as c:
        yield c


@pytest.fixture
def kernel(client: httpx.AsyncClient, app: Starlette) -> Kernel:
    """The running kernel behind ``client``."""
    return app.state.kernel


# -- answers ---------------------------------------------------------------------------


def paths_of(error: dict) -> list[str]:
    return [d.get("path") for d in error["details"]]


# -- jobs --------------------------------------------------------------------------------

async def submit(client: httpx.AsyncClient, type: str, input: dict | None = None,
                 **fields: Any) -> dict:
    body: dict[str, Any] = {"type": type, **fields}
    if input is not None:
        body["input"] = input
    r = await client.post(JOBS, json=body)
    assert r.status_code == 202, r.text
    return r.json()


async def get_job(client: httpx.AsyncClient, job_id: str) -> dict:
    r = await client.get(f"{JOBS}/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


#: :func:`tests.kernel.conftest.eventually` with the jobs tests' bound and pace
eventually = functools.partial(eventually_within, timeout=WAIT, interval=POLL)


async def wait_status(client: httpx.AsyncClient, job_id: str, *statuses: str,
                      timeout: float = WAIT) -> dict:
    """The job once its status is one of ``statuses`` (default: any final one)."""
    wanted = statuses or FINAL

    async def reached() -> dict | None:
        job = await get_job(client, job_id)
        return job if job["status"] in wanted else None

    return await eventually(reached, timeout=timeout, what=f"job {job_id[:8]} {wanted}")


async def log_of(client: httpx.AsyncClient, job_id: str, *, page: int = 1000) -> list[dict]:
    """Every line of the job's log, oldest first (paged with ``next_after_id``)."""
    lines: list[dict] = []
    after = 0
    while True:
        r = await client.get(f"{JOBS}/{job_id}/log", params={"after_id": after, "limit": page})
        assert r.status_code == 200, r.text
        body = r.json()
        lines += body["items"]
        if not body["items"]:
            assert body["next_after_id"] == after
            return lines
        after = body["next_after_id"]


async def messages(client: httpx.AsyncClient, job_id: str) -> list[str]:
    return [line["message"] for line in await log_of(client, job_id)]


async def job_events(client: httpx.AsyncClient, job_id: str | None = None) -> list[dict]:
    """Events of type ``job.*`` (of one job), oldest first."""
    r = await client.get("/v1/events", params={"type": "job.", "after": 0, "limit": 1000})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"]
            if job_id is None or e["data"].get("job_id") == job_id]


async def upload(client: httpx.AsyncClient, data: bytes = b"job input\n") -> dict:
    r = await client.post("/v1/assets/upload",
                          files=[("file", ("input.bin", data, "application/octet-stream"))])
    assert r.status_code == 201, r.text
    return r.json()


# -- a real server ---------------------------------------------------------------------

@asynccontextmanager
async def live_core(app: Starlette, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` served by Hypercorn on a loopback socket, on this test's event loop (the test
    job types' gates still work); yields a client talking to it over that socket."""
    sock = listen_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = hypercorn_config("127.0.0.1", port)
    config.graceful_timeout = 2
    stop = asyncio.Event()
    server = asyncio.create_task(worker_serve(
        wrap_app(app, config.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
        config, sockets=Sockets([], [sock], []), shutdown_trigger=stop.wait))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False,
                                     headers={"Authorization": f"Bearer {token}"},
                                     timeout=WAIT) as client:

            async def answers() -> bool:
                if server.done():
                    server.result()  # raises what stopped it
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answers, what="the live server")
            yield client
    finally:
        stop.set()
        try:
            async with asyncio.timeout(WAIT):
                await server
        finally:
            sock.close()
