"""Symbolic links: skipped unless ``follow_symlinks``; followed only while they stay inside
the folder being imported (a link out of it — to /etc/hostname, to a folder beside it —
is a warning line and nothing is read); loops end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.plugins_builtin.assets.folders import (
    assets_by_id,
    job_log,
    run_import,
    sha,
    shas,
    warnings,
    write_tree,
)


@pytest.fixture
def outside(tmp_path: Path) -> dict[str, bytes]:
    """Files beside the import folder, which no link may bring in (one in a folder whose
    name starts like the import folder's: ``src-private``)."""
    return write_tree(tmp_path, {"outside/secret.txt": "outside the root",
                                 "outside/deeper/key.pem": "a private key",
                                 "src-private/notes.txt": "a sibling's notes"})


def links_out(src: Path) -> list[str]:
    """Links from ``src`` to the outside world; returns their relative paths."""
    made = {"hostname": "/etc/hostname",
            "secret.txt": "../outside/secret.txt",
            "outdir": "../outside",
            "sub/up-and-out": "../../outside/deeper",
            "sibling.txt": str(src.parent / "src-private" / "notes.txt"),
            "sibling-dir": "../src-private"}
    for relpath, target in made.items():
        link = src / relpath
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
    return list(made)


async def test_without_follow_symlinks_links_are_skipped_and_counted(client, store, src: Path,
                                                                     outside):
    files = write_tree(src, {"real.txt": "real", "realdir/inner.txt": "inner",
                             "hidden/only-via-link.txt": "reached through a link"})
    (src / "link.txt").symlink_to("hidden/only-via-link.txt")
    (src / "linkdir").symlink_to("hidden")
    out = links_out(src)
    job = await run_import(client, src, exclude=["hidden"])

    wanted = {k: v for k, v in files.items() if not k.startswith("hidden/")}
    assert set(await assets_by_id(client)) == shas(wanted) == store.blobs()
    result = job["result"]
    assert result["symlinks_skipped"] == 2 + len(out)
    assert (result["files"], result["imported"], result["problems"]) == (2, 2, 0)
    log = await job_log(client, job["job_id"])
    assert warnings(log) == []  # skipping was asked for: not a problem
    assert any(f"{2 + len(out)} symlink(s) skipped" in line["message"] for line in log)


async def test_follow_symlinks_follows_links_that_stay_inside(client, src: Path):
    files = write_tree(src, {"real.txt": "real",
                             "hidden/only-via-link.txt": "reached through a link",
                             "hidden/deep/a.txt": "a", "hidden/deep/b.txt": "b"})
    (src / "shown.txt").symlink_to("hidden/only-via-link.txt")
    (src / "view").symlink_to(src / "hidden" / "deep")  # absolute, still inside
    (src / "around").mkdir()
    (src / "around" / "back-in.txt").symlink_to("../../src/real.txt")  # out and back in
    job = await run_import(client, src, follow_symlinks=True, exclude=["hidden"])

    assets = await assets_by_id(client)
    assert set(assets) == shas(files)
    assert assets[sha(files["hidden/only-via-link.txt"])]["filename"] == "shown.txt"
    result = job["result"]
    assert result["symlinks_skipped"] == 0 and result["problems"] == 0
    # real.txt twice (itself and back-in.txt), shown.txt, view/a.txt, view/b.txt
    assert (result["files"], result["imported"], result["deduplicated"]) == (5, 4, 1)
    assert warnings(await job_log(client, job["job_id"])) == []


async def test_follow_symlinks_never_leaves_the_folder(client, store, src: Path, outside):
    files = write_tree(src, {"real.txt": "real", "sub/inner.txt": "inner"})
    out = links_out(src)
    job = await run_import(client, src, follow_symlinks=True)

    assets = await assets_by_id(client)
    assert set(assets) == shas(files) == store.blobs()
    for data in outside.values():
        assert sha(data) not in assets
    hostname = Path("/etc/hostname").read_bytes()
    assert sha(hostname) not in assets
    found = warnings(await job_log(client, job["job_id"]))
    assert len(found) == len(out), found
    for relpath in out:
        assert len([m for m in found if m.startswith(f"{relpath}: ")]) == 1, (relpath, found)
    assert job["result"]["problems"] == len(out)
    assert job["result"]["imported"] == 2


async def test_a_folder_given_as_a_symlink_is_imported_from_where_it_points(client,
                                                                            tmp_path: Path):
    files = write_tree(tmp_path / "real", {"a.txt": "a", "b/c.txt": "c"})
    (tmp_path / "real" / "again.txt").symlink_to(tmp_path / "real" / "a.txt")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    job = await run_import(client, tmp_path / "alias", follow_symlinks=True)
    assert set(await assets_by_id(client)) == shas(files)
    assert job["result"]["problems"] == 0
    assert (job["result"]["files"], job["result"]["deduplicated"]) == (3, 1)


@pytest.mark.parametrize("follow", [True, False], ids=["follow", "no-follow"])
async def test_symlink_loops_end(client, src: Path, follow: bool):
    files = write_tree(src, {"a/file.txt": "in a", "b/file.txt": "in b", "top.txt": "top"})
    (src / "a" / "up").symlink_to("..")           # back to the root
    (src / "a" / "self").symlink_to(".")          # the folder itself
    (src / "b" / "to-a").symlink_to("../a")       # a -> up -> root -> b -> to-a -> ...
    (src / "knot").symlink_to("knot")             # a link to itself (ELOOP)
    (src / "ping").symlink_to("pong")
    (src / "pong").symlink_to("ping")
    job = await run_import(client, src, follow_symlinks=follow)
    assert job["finished_at"] is not None
    assert set(await assets_by_id(client)) == shas(files)
    assert job["result"]["imported"] == 3
    if not follow:
        assert job["result"]["symlinks_skipped"] == 6


async def test_a_dangling_link_inside_is_no_file(client, src: Path):
    files = write_tree(src, {"real.txt": "real"})
    (src / "dangling.txt").symlink_to("not-there.txt")
    os.symlink("missing-dir", src / "dangling-dir")
    job = await run_import(client, src, follow_symlinks=True)
    assert set(await assets_by_id(client)) == shas(files)
    assert job["result"]["files"] == 1
