"""Private by default: FACEFORGE_HOME and its folders are owner-only (0700), core.json,
ports.json and the log files are 0600, and the JSON files are replaced atomically (a crash
mid-write leaves the previous file whole and no half file)."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.config import (
    load_settings,
    read_ports,
    rotate_token,
    write_ports,
    write_private_json,
)
from kernel.home import SUBFOLDERS, private_dir
from kernel.log import configure_logging

from .conftest import write_json

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run under a usual and a wide-open umask: modes must not depend on it."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# --- folders ------------------------------------------------------------------------------


def test_a_new_home_and_its_folders_are_owner_only(home: Path, umask: int) -> None:
    load_settings(home, env={})
    assert mode(home) == 0o700
    for name in SUBFOLDERS:
        assert mode(home / name) == 0o700, f"{name}/ is {oct(mode(home / name))}"


def test_a_home_made_earlier_with_0755_is_tightened_on_the_next_start(home: Path) -> None:
    load_settings(home, env={})
    (home / "assets" / "keep.bin").write_bytes(b"data")
    for folder in [home, *(home / name for name in SUBFOLDERS)]:
        os.chmod(folder, 0o755)

    load_settings(home, env={})

    assert mode(home) == 0o700
    for name in SUBFOLDERS:
        assert mode(home / name) == 0o700, name
    assert (home / "assets" / "keep.bin").read_bytes() == b"data"  # contents untouched


def test_overrides_inside_the_home_are_tightened_outside_only_created_private(
    tmp_path: Path, home: Path, write_core_json: Callable[[dict[str, Any]], Path]
) -> None:
    shared = tmp_path / "shared-disk" / "assets"
    shared.mkdir(parents=True)
    os.chmod(shared, 0o755)  # the user's own folder elsewhere: theirs to set
    fresh = tmp_path / "new-disk" / "logs"
    inside = home / "data" / "db"
    inside.mkdir(parents=True)
    os.chmod(inside, 0o777)
    write_core_json({"paths": {"assets_dir": str(shared), "logs_dir": str(fresh),
                               "db_dir": "data/db"}})

    load_settings(home, env={})

    assert mode(shared) == 0o755
    assert mode(fresh) == 0o700
    assert mode(inside) == 0o700


def test_private_dir_creates_missing_parents(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "a" / "b" / "c"
    private_dir(target)
    assert target.is_dir() and mode(target) == 0o700


def test_on_windows_folders_and_files_are_made_without_chmod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_chmod(*args: object) -> None:
        raise AssertionError("chmod called on Windows")

    monkeypatch.setattr(os, "name", "nt")
    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(os, "fchmod", no_chmod)
    private_dir(tmp_path / "home" / "config")
    write_private_json(tmp_path / "home" / "config" / "core.json", {"a": 1})
    configure_logging(tmp_path / "home" / "logs", console=False)
    logging.getLogger("faceforge.test").info("hello")
    assert json.loads((tmp_path / "home" / "config" / "core.json").read_text()) == {"a": 1}
    assert "hello" in (tmp_path / "home" / "logs" / "core.log").read_text()


# --- core.json and ports.json -------------------------------------------------------------


def test_core_json_and_ports_json_are_0600(home: Path, umask: int) -> None:
    settings = load_settings(home, env={})
    write_ports(settings.paths, 45678)
    assert mode(settings.paths.config_file) == 0o600
    assert mode(settings.paths.ports_file) == 0o600
    assert read_ports(settings.paths).core == 45678  # type: ignore[union-attr]


def test_an_older_world_readable_ports_json_is_rewritten_private(home: Path) -> None:
    settings = load_settings(home, env={})
    old = write_json(settings.paths.ports_file, {"core": 1, "seaweed_s3": 45002})
    os.chmod(old, 0o644)
    write_ports(settings.paths, 45001)
    assert mode(old) == 0o600
    assert json.loads(old.read_text()) == {"core": 45001, "seaweed_s3": 45002}


def test_the_temp_file_is_0600_from_the_start(tmp_path: Path, umask: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "core.json"
    seen: list[tuple[str, int, str]] = []
    replace = os.replace

    def inspect_then_replace(src: str | Path, dst: str | Path) -> None:
        seen.append((Path(src).name, mode(Path(src)), Path(src).read_text()))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", inspect_then_replace)
    write_private_json(target, {"auth": {"install_token": "t" * 40}})

    [(name, tmp_mode, text)] = seen
    assert name != "core.json" and tmp_mode == 0o600
    assert json.loads(text) == {"auth": {"install_token": "t" * 40}}  # whole before the rename
    assert mode(target) == 0o600
    assert leftovers(tmp_path, {"core.json"}) == []


@pytest.mark.parametrize("failing", ["os.fsync", "os.replace"])
def test_a_crash_mid_write_keeps_the_previous_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "core.json"
    write_private_json(target, {"auth": {"install_token": "old"}})
    before = target.read_bytes()

    def crash(*args: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, failing.split(".")[1], crash)
    with pytest.raises(OSError, match="Input/output"):
        write_private_json(target, {"auth": {"install_token": "new"}})
    monkeypatch.undo()

    assert target.read_bytes() == before
    assert leftovers(tmp_path, {"core.json"}) == []  # no half-written temp file left
    assert mode(target) == 0o600


def test_data_that_is_not_json_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "core.json"
    write_private_json(target, {"a": 1})
    with pytest.raises(TypeError):
        write_private_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert leftovers(tmp_path, {"core.json"}) == []


def test_rotating_the_token_keeps_core_json_private(home: Path) -> None:
    settings = load_settings(home, env={})
    os.chmod(settings.paths.config_file, 0o644)
    rotate_token(settings.paths.config_file)
    assert mode(settings.paths.config_file) == 0o600
    assert leftovers(settings.paths.config_dir, {"core.json"}) == []


# --- log files ----------------------------------------------------------------------------


def test_log_file_and_its_backups_are_0600(tmp_path: Path, umask: int) -> None:
    logs = tmp_path / "logs"
    configure_logging(logs, max_bytes=1_000, backup_count=2, console=False)
    log = logging.getLogger("faceforge.test")
    for n in range(60):
        log.info("line %03d %s", n, "x" * 40)
    names = sorted(p.name for p in logs.iterdir())
    assert names == ["core.log", "core.log.1", "core.log.2"]
    for name in names:
        assert mode(logs / name) == 0o600, name
    assert mode(logs) == 0o700


def test_log_files_left_world_readable_by_an_older_core_are_tightened(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("core.log", "core.log.1"):
        (logs / name).write_text('{"message": "old"}\n', encoding="utf-8")
        os.chmod(logs / name, 0o644)
    configure_logging(logs, console=False)
    logging.getLogger("faceforge.test").info("new")
    assert mode(logs / "core.log") == mode(logs / "core.log.1") == 0o600
    text = (logs / "core.log").read_text(encoding="utf-8")
    assert text.startswith('{"message": "old"}\n') and '"new"' in text  # appended, not lost


def test_the_token_is_never_written_into_a_folder_others_can_read(
        home: Path, umask: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import kernel.config as config

    seen: list[int] = []
    real = config.write_private_json

    def spy(path: Path, data: Any) -> None:
        seen.extend([stat.S_IMODE(p.stat().st_mode) for p in (path.parent, path.parent.parent)])
        real(path, data)

    monkeypatch.setattr(config, "write_private_json", spy)
    load_settings(home, env={})
    assert seen == [0o700, 0o700]  # config/ and the home, when core.json is first written
