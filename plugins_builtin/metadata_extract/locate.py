"""Finding ExifTool: ``tools.exiftool_path``, then ``<tools>/``, then ``PATH``.

The reference readme (spec §6) looks in the tools folder only; issue 8 adds ``PATH``, where
a Debian or Homebrew package puts it.  A configured path is the only candidate when set, so a
typo is reported rather than silently running another ExifTool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROBE_SECONDS = 20.0


@dataclass(frozen=True)
class Located:
    """The ExifTool to run, or why there is none (``reason`` is shown to users)."""

    path: Path | None
    reason: str | None = None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def locate_exiftool(tools: dict[str, Any], tools_dir: Path, *, path_env: str | None,
                    windows: bool = os.name == "nt") -> Located:
    """Where ExifTool is, from the ``tools`` config section and the ``PATH`` value given."""
    if tools.get("exiftool_enabled") is False:
        return Located(None, "turned off in config (tools.exiftool_enabled is false)")
    configured = tools.get("exiftool_path")
    if configured:
        path = Path(configured).expanduser()
        path = path if path.is_absolute() else tools_dir / path
        if _executable(path):
            return Located(path)
        return Located(None, f"exiftool not found (looked in {path}, from "
                             f"tools.exiftool_path)")
    name = "exiftool.exe" if windows else "exiftool"
    candidates = [tools_dir / name, tools_dir / "exiftool" / name]
    for candidate in candidates:
        if _executable(candidate):
            return Located(candidate)
    found = shutil.which("exiftool", path=path_env) if path_env else None
    if found:
        return Located(Path(found))
    looked = ", ".join(str(c) for c in candidates)
    return Located(None, f"exiftool not found (looked in {looked} and on PATH)")


async def probe_version(exe: Path) -> str:
    """``exiftool -ver``; raises :class:`RuntimeError` saying why it did not answer."""
    try:
        proc = await asyncio.create_subprocess_exec(
            str(exe), "-ver", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise RuntimeError(f"{exe} does not run: {exc.strerror or exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), PROBE_SECONDS)
    except TimeoutError:
        raise RuntimeError(f"{exe} -ver did not answer within {PROBE_SECONDS:g} s") from None
    finally:
        if proc.returncode is None:  # timed out, or Core is stopping: leave no process
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    version = out.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or not version:
        said = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{exe} -ver failed (code {proc.returncode}): {said[0]}")
    return version
