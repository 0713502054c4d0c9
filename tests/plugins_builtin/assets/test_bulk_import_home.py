"""Core's own home is never imported: a folder inside it is refused, and a folder around it
is imported without it (its database, config and blobs are not the user's files)."""

from __future__ import annotations

from pathlib import Path

from tests.plugins_builtin.assets.conftest import error_of
from tests.plugins_builtin.assets.folders import (
    BULK_IMPORT,
    assets_by_id,
    job_ids,
    run_import,
    shas,
    write_tree,
)


async def test_a_folder_inside_the_home_is_refused(client, home: Path):
    for inside in (home, home / "assets"):
        r = await client.post(BULK_IMPORT, json={"path": str(inside)})
        error = error_of(r, 422, "validation_error")
        assert error["details"][0]["path"] == "$.path"
        assert "home" in error["message"]
    assert await job_ids(client) == []


async def test_a_folder_around_the_home_is_imported_without_it(client, home: Path):
    around = home.parent  # the test's folder: the home and the user's files side by side
    files = write_tree(around / "photos", {"a.txt": "mine", "b/c.txt": "mine too"})
    job = await run_import(client, around)
    assert job["status"] == "succeeded", job
    assert set(await assets_by_id(client)) == shas(files)
