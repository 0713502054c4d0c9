"""FACEFORGE_HOME: where it is resolved to, and the folders Core creates under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.config import load_settings
from kernel.home import SUBFOLDERS, default_home, resolve_home


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``~`` so the per-OS defaults land under tmp_path."""
    home = tmp_path / "user"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    return home


# --- resolution order -------------------------------------------------------------------


def test_explicit_home_beats_env(tmp_path: Path) -> None:
    env = {"FACEFORGE_HOME": str(tmp_path / "from-env")}
    assert resolve_home(tmp_path / "explicit", env) == tmp_path / "explicit"


def test_env_home_beats_the_os_default(tmp_path: Path, user_home: Path) -> None:
    env = {"FACEFORGE_HOME": str(tmp_path / "from-env"), "XDG_DATA_HOME": str(tmp_path / "x")}
    assert resolve_home(None, env) == tmp_path / "from-env"


def test_home_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    resolved = resolve_home("relative/home", {})
    assert resolved.is_absolute()
    assert resolved == tmp_path / "relative" / "home"


def test_default_is_never_the_working_directory(
    tmp_path: Path, user_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    resolved = resolve_home(None, {})
    assert resolved != cwd and cwd not in resolved.parents
    assert user_home in resolved.parents


# --- per-OS defaults --------------------------------------------------------------------


def test_linux_default_uses_xdg_data_home(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert default_home(env, platform="linux") == tmp_path / "xdg" / "faceforge"


def test_linux_default_falls_back_to_local_share(user_home: Path) -> None:
    assert default_home({}, platform="linux") == user_home / ".local" / "share" / "faceforge"


def test_linux_ignores_a_relative_xdg_data_home(user_home: Path) -> None:
    # The XDG spec says relative values are invalid; following one would land in the cwd.
    default = default_home({"XDG_DATA_HOME": "data"}, platform="linux")
    assert default == user_home / ".local" / "share" / "faceforge"


def test_windows_default_uses_localappdata() -> None:
    env = {"LOCALAPPDATA": r"C:\Users\ada\AppData\Local"}
    assert default_home(env, platform="win32") == Path(r"C:\Users\ada\AppData\Local") / "FaceForge"


def test_windows_default_without_localappdata(user_home: Path) -> None:
    assert default_home({}, platform="win32") == user_home / "AppData" / "Local" / "FaceForge"


def test_macos_default_is_application_support(user_home: Path) -> None:
    expected = user_home / "Library" / "Application Support" / "FaceForge"
    assert default_home({"XDG_DATA_HOME": "/ignored"}, platform="darwin") == expected


def test_settings_use_the_default_home_when_nothing_is_set(
    tmp_path: Path, user_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert settings.paths.home == tmp_path / "xdg" / "faceforge"
    assert (tmp_path / "xdg" / "faceforge" / "config" / "core.json").is_file()


def test_settings_use_faceforge_home_from_env(tmp_path: Path) -> None:
    settings = load_settings(env={"FACEFORGE_HOME": str(tmp_path / "env-home")})
    assert settings.paths.home == tmp_path / "env-home"
    assert settings.paths.db_file == tmp_path / "env-home" / "db" / "core.sqlite3"


# --- folders ----------------------------------------------------------------------------


def test_every_subfolder_is_created(home: Path) -> None:
    load_settings(home, env={})
    for name in SUBFOLDERS:
        assert (home / name).is_dir(), f"{name}/ was not created under the home"


def test_starting_twice_keeps_existing_folders_and_files(home: Path) -> None:
    load_settings(home, env={})
    (home / "assets" / "keep.bin").write_bytes(b"data")
    load_settings(home, env={})
    assert (home / "assets" / "keep.bin").read_bytes() == b"data"


def test_path_overrides_absolute_and_relative(tmp_path: Path, home: Path,
                                              write_core_json) -> None:
    elsewhere = tmp_path / "big-disk" / "assets"
    write_core_json({"paths": {"assets_dir": str(elsewhere), "db_dir": "data/db",
                               "logs_dir": "../shared-logs"}})
    settings = load_settings(home, env={})

    assert settings.paths.assets_dir == elsewhere
    assert settings.paths.db_dir == home / "data" / "db"
    assert settings.paths.db_file == home / "data" / "db" / "core.sqlite3"
    assert settings.paths.logs_dir == tmp_path / "shared-logs"
    for folder in (elsewhere, home / "data" / "db", tmp_path / "shared-logs"):
        assert folder.is_dir()
    # Folders without an override stay under the home.
    assert settings.paths.s3_dir == home / "s3"
    assert settings.paths.config_file == home / "config" / "core.json"
