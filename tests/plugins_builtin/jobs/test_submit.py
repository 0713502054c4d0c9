"""Submitting jobs (``POST /v1/jobs``) and reading them back (``GET /v1/jobs``, one job):
what is accepted, what is refused and how, filters and exact cursor paging."""

from __future__ import annotations

import base64
import json
import re

import pytest
from job_types import ECHO, FAIL, HOLD, REMOTE, REMOTE_ATTEMPTS, REMOTE_OTHER

from .conftest import (
    JOBS,
    UNKNOWN_ID,
    error_of,
    get_job,
    job_events,
    paths_of,
    submit,
    upload,
    wait_status,
)

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z$")
JOB_FIELDS = {"job_id", "type", "status", "priority", "input", "input_asset_id", "progress",
              "result", "output_asset_ids", "error", "attempts", "max_attempts",
              "cancel_requested", "correlation_id", "runner_id", "lease_expires_at",
              "created_at", "updated_at", "started_at", "finished_at"}


# -- POST /v1/jobs ---------------------------------------------------------------------

async def test_a_job_is_accepted_with_202_and_queued(client) -> None:
    r = await client.post(JOBS, json={"type": REMOTE, "input": {"n": 1}, "priority": 7})
    assert r.status_code == 202, r.text
    job = r.json()
    assert set(job) == JOB_FIELDS
    assert re.fullmatch(r"[0-9a-f]{64}", job["job_id"])
    assert job["type"] == REMOTE and job["status"] == "queued" and job["priority"] == 7
    assert job["input"] == {"n": 1}
    assert job["attempts"] == 0 and job["max_attempts"] == REMOTE_ATTEMPTS  # the type's
    assert job["progress"] == {} and job["result"] is None and job["error"] is None
    assert job["output_asset_ids"] == [] and job["cancel_requested"] is False
    assert job["runner_id"] is None and job["lease_expires_at"] is None
    assert job["started_at"] is None and job["finished_at"] is None
    assert RFC3339_UTC.match(job["created_at"]) and job["updated_at"] == job["created_at"]
    assert await get_job(client, job["job_id"]) == job  # nobody runs remote jobs here
    assert (await client.get(f"{JOBS}/{job['job_id']}/log")).json()["items"][0][
        "message"] == f"queued ({REMOTE}, priority 7)"


async def test_the_input_is_decoded_with_the_type_s_schema(client) -> None:
    job = await submit(client, ECHO, {"text": "hi"})
    assert job["input"] == {"text": "hi", "lines": 0}  # the schema's default filled in
    assert (await wait_status(client, job["job_id"]))["result"]["echo"] == "hi"


async def test_an_unknown_type_is_a_422_naming_the_known_ones(client) -> None:
    error = error_of(await client.post(JOBS, json={"type": "testjobs.nope"}), 422,
                     "validation_error")
    assert "testjobs.nope" in error["message"]
    for known in (ECHO, HOLD, REMOTE):
        assert known in error["message"]
    assert paths_of(error) == ["$.type"]
    assert {ECHO, HOLD, FAIL, REMOTE, REMOTE_OTHER} <= set(error["details"][0]["known"])
    assert (await client.get(JOBS)).json()["items"] == []  # nothing was queued


@pytest.mark.parametrize(("input", "path", "says"), [
    ({"text": 3}, "$.input.text", "Expected `str`, got `int`"),
    ({"text": "a", "lines": "many"}, "$.input.lines", "Expected `int`"),
    ({}, "$.input", "missing required field `text`"),
    ({"text": "a", "colour": "red"}, "$.input", "unknown field `colour`"),
])
async def test_input_that_does_not_fit_the_schema_is_a_422_naming_the_field(
        client, input, path, says) -> None:
    error = error_of(await client.post(JOBS, json={"type": ECHO, "input": input}), 422,
                     "validation_error")
    assert paths_of(error) == [path]
    assert says in error["message"] and path in error["message"]
    assert (await client.get(JOBS)).json()["items"] == []


@pytest.mark.parametrize(("body", "path"), [
    ({"input": {"text": "a"}}, "$"),  # no type
    ({"type": ECHO, "input": {"text": "a"}, "colour": "red"}, "$"),  # unknown field
    ({"type": ECHO, "input": ["text"]}, "$.input"),  # not an object
    ({"type": ECHO, "input": {"text": "a"}, "priority": "high"}, "$.priority"),
    ({"type": ECHO, "input": {"text": "a"}, "priority": 1.5}, "$.priority"),
    ({"type": ECHO, "input": {"text": "a"}, "priority": 1_000_001}, "$.priority"),
    ({"type": ECHO, "input": {"text": "a"}, "priority": -1_000_001}, "$.priority"),
    ({"type": ECHO, "input": {"text": "a"}, "max_attempts": 0}, "$.max_attempts"),
    ({"type": ECHO, "input": {"text": "a"}, "max_attempts": 101}, "$.max_attempts"),
    ({"type": ECHO, "input": {"text": "a"}, "input_asset_id": "not-an-id"},
     "$.input_asset_id"),
])
async def test_a_malformed_request_is_a_422_naming_the_field(client, body, path) -> None:
    error = error_of(await client.post(JOBS, json=body), 422)
    assert path in paths_of(error) or path in error["message"], error
    assert (await client.get(JOBS)).json()["items"] == []


async def test_priority_and_max_attempts_at_their_bounds_are_accepted(client) -> None:
    low = await submit(client, REMOTE, priority=-1_000_000, max_attempts=1)
    high = await submit(client, REMOTE, priority=1_000_000, max_attempts=100)
    assert (low["priority"], low["max_attempts"]) == (-1_000_000, 1)
    assert (high["priority"], high["max_attempts"]) == (1_000_000, 100)


async def test_an_input_asset_must_exist(client) -> None:
    missing = error_of(await client.post(JOBS, json={"type": REMOTE,
                                                     "input_asset_id": UNKNOWN_ID}),
                       404, "asset_not_found")
    assert UNKNOWN_ID in missing["message"]
    asset = await upload(client)
    job = await submit(client, REMOTE, input_asset_id=asset["asset_id"])
    assert job["input_asset_id"] == asset["asset_id"]
    assert (await get_job(client, job["job_id"]))["input_asset_id"] == asset["asset_id"]
    # a deleted asset is no input either
    assert (await client.delete(f"/v1/assets/{asset['asset_id']}")).status_code == 204
    error_of(await client.post(JOBS, json={"type": REMOTE,
                                           "input_asset_id": asset["asset_id"]}),
             404, "asset_not_found")
    assert [j["job_id"] for j in (await client.get(JOBS)).json()["items"]] == [job["job_id"]]


async def test_the_request_s_correlation_id_lands_in_the_job_and_its_event(client) -> None:
    r = await client.post(JOBS, json={"type": ECHO, "input": {"text": "hi"}},
                          headers={"X-Correlation-ID": "import-run.42"})
    assert r.status_code == 202, r.text
    assert r.headers["x-correlation-id"] == "import-run.42"
    job = r.json()
    assert job["correlation_id"] == "import-run.42"
    done = await wait_status(client, job["job_id"])
    assert done["correlation_id"] == "import-run.42"
    assert done["result"]["correlation_id"] == "import-run.42"  # the handler's context
    created = [e for e in await job_events(client, job["job_id"]) if e["type"] == "job.created"]
    assert len(created) == 1
    assert created[0]["correlation_id"] == "import-run.42"
    assert created[0]["data"] == {"job_id": job["job_id"], "type": ECHO, "priority": 0}


async def test_without_a_correlation_header_the_job_gets_the_generated_one(client) -> None:
    r = await client.post(JOBS, json={"type": REMOTE})
    assert r.json()["correlation_id"] == r.headers["x-correlation-id"]


# -- GET /v1/jobs/{id} -------------------------------------------------------------------

@pytest.mark.parametrize("job_id", [UNKNOWN_ID, "abc", "Z" * 64, "0" * 65])
async def test_an_unknown_or_malformed_job_id_is_job_not_found(client, job_id) -> None:
    error = error_of(await client.get(f"{JOBS}/{job_id}"), 404, "job_not_found")
    assert job_id in error["message"]
    for method, suffix, body in [("GET", "/log", None), ("PATCH", "", {"priority": 1}),
                                 ("POST", "/cancel", None), ("POST", "/retry", None),
                                 ("GET", "/stream", None)]:
        r = await client.request(method, f"{JOBS}/{job_id}{suffix}", json=body)
        error_of(r, 404, "job_not_found")


# -- GET /v1/jobs ------------------------------------------------------------------------

async def test_the_list_filters_by_status_and_type_each_repeatable(client) -> None:
    queued = await submit(client, REMOTE)
    other = await submit(client, REMOTE_OTHER)
    cancelled = await submit(client, REMOTE)
    assert (await client.post(f"{JOBS}/{cancelled['job_id']}/cancel")).status_code == 200
    succeeded = await submit(client, ECHO, {"text": "x"})
    failed = await submit(client, FAIL, {"mode": "job_failed"})
    await wait_status(client, succeeded["job_id"], "succeeded")
    await wait_status(client, failed["job_id"], "failed")

    async def ids(**params) -> list[str]:
        r = await client.get(JOBS, params=params)
        assert r.status_code == 200, r.text
        return [j["job_id"] for j in r.json()["items"]]

    every = [failed, succeeded, cancelled, other, queued]  # newest first
    assert await ids() == [j["job_id"] for j in every]
    assert await ids(status="queued") == [other["job_id"], queued["job_id"]]
    assert await ids(status=["cancelled", "failed"]) == [failed["job_id"],
                                                          cancelled["job_id"]]
    assert await ids(status="running") == []
    assert await ids(type=REMOTE) == [cancelled["job_id"], queued["job_id"]]
    assert await ids(type=[ECHO, REMOTE_OTHER]) == [succeeded["job_id"], other["job_id"]]
    assert await ids(type=REMOTE, status="queued") == [queued["job_id"]]
    assert await ids(type="testjobs.nope") == []
    error_of(await client.get(JOBS, params={"status": "done"}), 422)


async def test_cursor_paging_is_exact_while_jobs_are_added(client) -> None:
    made = [(await submit(client, REMOTE, {"n": n}))["job_id"] for n in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        r = await client.get(JOBS, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [j["job_id"] for j in page["items"]]
        pages += 1
        # a job added mid-way is newer than the cursor: it is not on the later pages
        await submit(client, REMOTE, {"n": "late"})
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 3
    assert seen == made[::-1]  # newest first, no job missed or repeated
    assert pages == 3


async def test_the_last_full_page_has_no_next_cursor(client) -> None:
    for n in range(2):
        await submit(client, REMOTE, {"n": n})
    page = (await client.get(JOBS, params={"limit": 2})).json()
    assert len(page["items"]) == 2 and page["next_cursor"] is None


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", ["garbage!", "e30", _cursor(["assets", 5]),
                                    _cursor(["jobs", "5"]), _cursor(["jobs", 2 ** 70]),
                                    _cursor({"jobs": 5})])
async def test_a_cursor_this_server_did_not_issue_is_a_400(client, cursor) -> None:
    await submit(client, REMOTE)
    error_of(await client.get(JOBS, params={"cursor": cursor}), 400, "invalid_cursor")


@pytest.mark.parametrize(("limit", "status"), [(0, 422), (501, 422), ("ten", 422),
                                               (1, 200), (500, 200)])
async def test_the_list_limit_is_bounded(client, limit, status) -> None:
    await submit(client, REMOTE)
    r = await client.get(JOBS, params={"limit": limit})
    if status == 200:
        assert r.status_code == 200 and len(r.json()["items"]) == 1
    else:
        assert "$.limit" in paths_of(error_of(r, status)) or "limit" in r.text
