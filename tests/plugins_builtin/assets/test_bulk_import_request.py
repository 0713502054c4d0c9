"""``POST /v1/assets/bulk-import``: a request that cannot be imported is refused before any
job exists (422 naming the field, 404 for an unknown entity); a good one is a 202 with the
queued job.  (An unreadable folder is refused too: test_bulk_import_unreadable.py, on a
Core that cannot read past file permissions even as root.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins_builtin.assets.conftest import RFC3339_UTC, UNKNOWN_ID, error_of
from tests.plugins_builtin.assets.folders import (
    BULK_IMPORT,
    get_job,
    job_ids,
    start_import,
    wait_for_job,
    write_tree,
)


async def refused(client, body, status: int = 422, code: str | None = None,
                  field: str | None = "$.path") -> dict:
    """The error for ``body``; nothing was queued."""
    r = await client.post(BULK_IMPORT, json=body)
    error = error_of(r, status, code)
    if field is not None:
        assert field in [d.get("path") for d in error["details"]], error
    assert await job_ids(client) == []
    return error


async def test_a_relative_path_is_refused_saying_it_must_be_absolute(client):
    for path in ("photos/2024", "./photos", "~/photos", "."):
        error = await refused(client, {"path": path})
        assert "absolute" in error["message"], error
        assert path in error["message"]


async def test_an_empty_path_is_refused(client):
    await refused(client, {"path": ""})


async def test_a_missing_folder_is_refused_naming_it(client, tmp_path: Path):
    missing = tmp_path / "not-there"
    error = await refused(client, {"path": str(missing)})
    assert str(missing) in error["message"]
    assert "no such folder" in error["message"]


async def test_a_file_is_not_a_folder(client, tmp_path: Path):
    write_tree(tmp_path, {"photo.jpg": b"not a folder"})
    error = await refused(client, {"path": str(tmp_path / "photo.jpg")})
    assert "not a folder" in error["message"]


async def test_a_path_under_a_file_is_refused(client, tmp_path: Path):
    write_tree(tmp_path, {"photo.jpg": b"a file"})
    await refused(client, {"path": str(tmp_path / "photo.jpg" / "inside")})


async def test_a_path_with_a_nul_character_is_refused(client, tmp_path: Path):
    error = await refused(client, {"path": f"{tmp_path}\x00/etc"})
    assert "NUL" in error["message"]


async def test_a_dangling_symlink_root_is_a_missing_folder(client, tmp_path: Path):
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    await refused(client, {"path": str(tmp_path / "link")})


async def test_an_unknown_entity_is_a_404_and_queues_nothing(client, tmp_path: Path):
    await refused(client, {"path": str(tmp_path), "entity_id": UNKNOWN_ID}, 404,
                  "entity_not_found", field=None)


async def test_a_malformed_entity_id_is_refused(client, tmp_path: Path):
    await refused(client, {"path": str(tmp_path), "entity_id": "Ada"}, field="$.entity_id")


async def test_a_bad_kind_is_refused(client, tmp_path: Path):
    error = await refused(client, {"path": str(tmp_path), "kind": "Not A Kind!"},
                          field="$.kind")
    assert "Not A Kind!" in error["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"recursive": "yes"}, "$.recursive"),
    ({"follow_symlinks": 1}, "$.follow_symlinks"),
    ({"include": "*.jpg"}, "$.include"),
    ({"include": [""]}, "$.include[0]"),
    ({"exclude": [7]}, "$.exclude[0]"),
    ({"priority": 10**9}, "$.priority"),
    ({"path": 42}, "$.path"),
], ids=["recursive", "follow_symlinks", "include-not-a-list", "empty-pattern",
        "exclude-not-text", "priority", "path-not-text"])
async def test_a_field_of_the_wrong_type_is_refused_naming_it(client, tmp_path: Path,
                                                             body, field):
    await refused(client, {"path": str(tmp_path), **body}, field=field)


async def test_an_unknown_field_is_refused_naming_it(client, tmp_path: Path):
    error = await refused(client, {"path": str(tmp_path), "recursve": False}, field=None)
    assert "recursve" in error["message"] or any(
        "recursve" in str(d) for d in error["details"]), error


async def test_a_missing_body_or_path_is_refused(client):
    for r in (await client.post(BULK_IMPORT),
              await client.post(BULK_IMPORT, content=b"{not json",
                                headers={"Content-Type": "application/json"}),
              await client.post(BULK_IMPORT, json=[]),
              await client.post(BULK_IMPORT, json={})):
        assert r.status_code in (400, 422), r.text
        error_of(r, r.status_code)
    assert await job_ids(client) == []


async def test_without_credentials_nothing_is_queued(anon, client, tmp_path: Path):
    r = await anon.post(BULK_IMPORT, json={"path": str(tmp_path)})
    error_of(r, 401)
    assert await job_ids(client) == []


async def test_a_good_request_answers_202_with_the_queued_job(client, tmp_path: Path):
    write_tree(tmp_path / "src", {"a.txt": "a"})
    started = await start_import(client, tmp_path / "src", recursive=False, priority=5,
                                 include=["*.txt"])
    assert set(started) == {"job_id", "job_type", "status", "created_at", "job"}
    assert started["job_type"] == "assets.bulk_import"
    assert RFC3339_UTC.match(started["created_at"])
    job = started["job"]
    assert job["job_id"] == started["job_id"] and job["type"] == "assets.bulk_import"
    assert job["priority"] == 5
    assert job["input"]["path"] == str(tmp_path / "src")
    assert job["input"]["recursive"] is False and job["input"]["include"] == ["*.txt"]
    assert "priority" not in job["input"]  # the job's own field, not its input
    assert await job_ids(client) == [started["job_id"]]
    listed = await get_job(client, started["job_id"])
    assert listed["type"] == "assets.bulk_import"
    done = await wait_for_job(client, started["job_id"])
    assert done["status"] == "succeeded", done


async def test_a_job_queued_through_v1_jobs_is_checked_like_the_import_route(client,
                                                                            tmp_path: Path):
    """The generic jobs route takes the same input; a folder that cannot be imported is a
    422 there too, not a job that fails later."""
    r = await client.post("/v1/jobs", json={"type": "assets.bulk_import",
                                            "input": {"path": "relative/folder"}})
    error = error_of(r, 422)
    assert "$.input.path" in [d.get("path") for d in error["details"]], error
    r = await client.post("/v1/jobs", json={"type": "assets.bulk_import",
                                            "input": {"path": str(tmp_path / "missing")}})
    error_of(r, 422)
    assert await job_ids(client) == []
