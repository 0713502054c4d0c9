"""Who may do what with jobs: reading needs ``jobs:read``, starting and steering jobs
``jobs:write``, the runner protocol ``jobs:run``; a token without the scope is refused with
403 naming it, and nothing changes."""

from __future__ import annotations

import pytest
from job_types import REMOTE

from .conftest import JOBS, error_of, get_job, submit

ONE = "/v1/jobs/{job_id}"
DECLARED = {
    ("post", "/v1/jobs"): "jobs:write",
    ("get", "/v1/jobs"): "jobs:read",
    ("get", ONE): "jobs:read",
    ("patch", ONE): "jobs:write",
    ("get", ONE + "/log"): "jobs:read",
    ("get", ONE + "/stream"): "jobs:read",
    ("post", ONE + "/cancel"): "jobs:write",
    ("post", ONE + "/retry"): "jobs:write",
    ("post", "/v1/jobs/claim"): "jobs:run",
    ("post", ONE + "/heartbeat"): "jobs:run",
    ("post", ONE + "/progress"): "jobs:run",
    ("post", ONE + "/log"): "jobs:run",
    ("post", ONE + "/complete"): "jobs:run",
    ("post", ONE + "/fail"): "jobs:run",
}


async def test_every_jobs_route_declares_its_scope(client) -> None:
    scopes = (await client.get("/v1/system/info")).json()["scopes"]
    assert {"jobs:read", "jobs:write", "jobs:run"} <= set(scopes)
    paths = (await client.get("/openapi.json")).json()["paths"]
    declared = {(method, path): operation["x-faceforge-scope"]
                for path, operations in paths.items() if path.startswith("/v1/jobs")
                for method, operation in operations.items()}
    assert declared == DECLARED


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_reader_can_read_but_not_start_or_run_jobs(client, kernel) -> None:
    job = await submit(client, REMOTE)
    reader = bearer(await kernel.scoped_tokens.issue("reader", ["jobs:read"]))
    assert (await client.get(JOBS, headers=reader)).status_code == 200
    assert (await client.get(f"{JOBS}/{job['job_id']}", headers=reader)).status_code == 200
    assert (await client.get(f"{JOBS}/{job['job_id']}/log",
                             headers=reader)).status_code == 200
    refused = await client.post(JOBS, json={"type": REMOTE}, headers=reader)
    assert "jobs:write" in error_of(refused, 403, "missing_scope")["message"]
    for path, body in [(f"{JOBS}/{job['job_id']}/cancel", None),
                       (f"{JOBS}/{job['job_id']}/retry", None)]:
        error_of(await client.post(path, json=body, headers=reader), 403, "missing_scope")
    error_of(await client.patch(f"{JOBS}/{job['job_id']}", json={"priority": 3},
                                headers=reader), 403, "missing_scope")
    claim = await client.post(f"{JOBS}/claim", json={"types": [REMOTE], "runner_id": "r"},
                              headers=reader)
    assert "jobs:run" in error_of(claim, 403, "missing_scope")["message"]
    assert await get_job(client, job["job_id"]) == job  # untouched
    assert len((await client.get(JOBS)).json()["items"]) == 1


async def test_a_runner_token_runs_jobs_but_cannot_start_or_list_them(client,
                                                                      kernel) -> None:
    job = await submit(client, REMOTE)
    runner = bearer(await kernel.scoped_tokens.issue("runner", ["jobs:run"]))
    r = await client.post(f"{JOBS}/claim", json={"types": [REMOTE], "runner_id": "r1"},
                          headers=runner)
    assert r.status_code == 200 and r.json()["job_id"] == job["job_id"]
    done = await client.post(f"{JOBS}/{job['job_id']}/complete", json={"runner_id": "r1"},
                             headers=runner)
    assert done.status_code == 200 and done.json()["status"] == "succeeded"
    error_of(await client.post(JOBS, json={"type": REMOTE}, headers=runner), 403,
             "missing_scope")
    error_of(await client.get(JOBS, headers=runner), 403, "missing_scope")


async def test_a_token_for_other_things_gets_nothing(client, kernel) -> None:
    job = await submit(client, REMOTE)
    other = bearer(await kernel.scoped_tokens.issue("other", ["entities:read"]))
    error_of(await client.get(f"{JOBS}/{job['job_id']}/stream", headers=other), 403,
             "missing_scope")
    error_of(await client.post(f"{JOBS}/{job['job_id']}/cancel", headers=other), 403,
             "missing_scope")
    assert (await get_job(client, job["job_id"]))["status"] == "queued"


@pytest.mark.parametrize(("method", "path"), [("GET", JOBS), ("POST", JOBS),
                                              ("POST", f"{JOBS}/claim")])
async def test_without_credentials_jobs_routes_are_a_401(anon, method, path) -> None:
    error_of(await anon.request(method, path, json={}), 401, "unauthorized")
