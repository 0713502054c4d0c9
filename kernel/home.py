"""FACEFORGE_HOME: where it is and the folders Core keeps under it (spec §10)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Folders created under the home at every start (spec §10.1).
SUBFOLDERS = ("db", "assets", "s3", "logs", "tmp", "config", "tools", "plugins")
DB_FILENAME = "core.sqlite3"
PRIVATE_DIR_MODE = 0o700
_FOLDER_FIELDS = ("config_dir", "tmp_dir", "db_dir", "assets_dir", "s3_dir", "logs_dir",
                  "tools_dir", "plugins_dir")


def private_dir(path: Path, *, tighten: bool = True) -> None:
    """Create ``path`` (and missing parents) readable by its owner only.

    A folder created here is 0700 whatever the umask; an existing one is made 0700 when
    ``tighten`` and its group or others have any access.  Windows: folders are created, modes
    are left to the ACLs the folder inherits.
    """
    existed = path.is_dir()
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if os.name != "posix" or (existed and not tighten):
        return
    mode = path.stat().st_mode & 0o777
    if (not existed and mode != PRIVATE_DIR_MODE) or mode & 0o077:
        os.chmod(path, PRIVATE_DIR_MODE)


def default_home(env: Mapping[str, str], platform: str = sys.platform) -> Path:
    """The per-user data directory; never the working directory."""
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA")
        return (Path(local) if local else Path.home() / "AppData" / "Local") / "FaceForge"
    if platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "FaceForge"
    xdg = env.get("XDG_DATA_HOME")
    # XDG says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "faceforge"


def resolve_home(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """``--home``, else ``FACEFORGE_HOME``, else the per-OS default; always absolute."""
    chosen = explicit or env.get("FACEFORGE_HOME") or default_home(env)
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class Paths:
    """Every folder Core uses, after ``paths.*`` overrides from ``config/core.json``."""

    home: Path
    config_dir: Path
    tmp_dir: Path
    db_dir: Path
    assets_dir: Path
    s3_dir: Path
    logs_dir: Path
    tools_dir: Path
    plugins_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "core.json"

    @property
    def ports_file(self) -> Path:
        return self.config_dir / "ports.json"

    @property
    def legacy_ports_file(self) -> Path:
        return self.home / "runtime" / "ports.json"

    @property
    def db_file(self) -> Path:
        return self.db_dir / DB_FILENAME

    def create(self) -> None:
        """Create every folder (idempotent), owner-only (0700 on POSIX).

        The home and the folders inside it are tightened at every start, so a home made
        earlier with 0755 becomes private; a ``paths.*`` override outside the home (a shared
        disk, say) is created private but an existing one is left as its owner set it.
        """
        private_dir(self.home)
        for name in _FOLDER_FIELDS:
            folder: Path = getattr(self, name)
            private_dir(folder, tighten=folder == self.home or self.home in folder.parents)

    def as_dict(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in self.__dataclass_fields__} | {
            "db_file": str(self.db_file),
            "config_file": str(self.config_file),
        }


def build_paths(home: Path, overrides: Mapping[str, str | None]) -> Paths:
    """Apply ``paths.*`` overrides (absolute, or relative to home); config/ and tmp/ are fixed."""

    def pick(key: str, default: str) -> Path:
        value = overrides.get(key)
        if not value:
            return home / default
        path = Path(value).expanduser()
        return (path if path.is_absolute() else home / path).resolve()

    return Paths(
        home=home,
        config_dir=home / "config",
        tmp_dir=home / "tmp",
        db_dir=pick("db_dir", "db"),
        assets_dir=pick("assets_dir", "assets"),
        s3_dir=pick("s3_dir", "s3"),
        logs_dir=pick("logs_dir", "logs"),
        tools_dir=pick("tools_dir", "tools"),
        plugins_dir=pick("plugins_dir", "plugins"),
    )
