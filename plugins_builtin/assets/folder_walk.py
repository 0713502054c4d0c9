"""Walking an import folder: which files to import, each with its ``_meta.json`` sidecar.

Symlinks are skipped unless followed, and a followed one must stay inside the root (its
real path is checked), so an import never reads outside the folder it was given.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SIDECAR_SUFFIX = "_meta.json"


@dataclass(slots=True)
class FileEntry:
    """One file to import (``relpath`` uses ``/``, relative to the root)."""

    relpath: str
    size: int
    mtime_ns: int
    #: the sidecar's name in the same folder, if there is one
    sidecar: str | None = None
    #: (size, mtime_ns) of the sidecar: a changed sidecar re-imports the file
    sidecar_stamp: str | None = None


@dataclass
class Walk:
    """The result of a walk: the files, and what was skipped (one line each)."""

    files: list[FileEntry] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    symlinks_skipped: int = 0
    sidecars: int = 0
    total_bytes: int = 0


def sidecar_names(name: str) -> tuple[str, ...]:
    """The sidecar names a file may have, most specific first: ``name_meta.json``,
    ``name._meta.json``, ``stem_meta.json``, ``stem._meta.json``."""
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    names = (f"{name}{SIDECAR_SUFFIX}", f"{name}.{SIDECAR_SUFFIX}",
             f"{stem}{SIDECAR_SUFFIX}", f"{stem}.{SIDECAR_SUFFIX}")
    return tuple(dict.fromkeys(names))


def _matches(relpath: str, patterns: Sequence[str]) -> bool:
    low = relpath.lower()
    return any(fnmatch.fnmatchcase(low, p) or fnmatch.fnmatchcase(low.rsplit("/", 1)[-1], p)
               for p in patterns)


def walk(root: Path, *, recursive: bool, include: Sequence[str], exclude: Sequence[str],
         follow_symlinks: bool, skip: Sequence[Path] = ()) -> Walk:
    """Every importable file under ``root`` (a real, absolute folder), in a stable order:
    depth first, names sorted; folders in ``skip`` (Core's home) are not entered."""
    include = [p.lower() for p in include]
    exclude = [p.lower() for p in exclude]
    result = Walk()
    real_root = os.path.realpath(root)
    seen = {_dir_key(real_root)}
    for folder in skip:
        with contextlib.suppress(OSError):
            seen.add(_dir_key(str(folder)))
    stack = [("", str(root))]
    while stack:
        prefix, folder = stack.pop()
        subdirs = _scan(folder, prefix, real_root, include, exclude, follow_symlinks, result)
        if not recursive:
            continue
        for name, path in reversed(subdirs):
            rel = f"{prefix}{name}"
            if _matches(rel, exclude):
                continue
            try:
                key = _dir_key(path)
            except OSError as exc:
                result.problems.append((rel, f"cannot open the folder: {exc.strerror}"))
                continue
            if key in seen:  # a loop, or a second way into the same folder
                continue
            seen.add(key)
            stack.append((rel + "/", path))
    return result


def _dir_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _inside(real_root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _scan(folder: str, prefix: str, real_root: str, include: Sequence[str],
          exclude: Sequence[str], follow: bool, result: Walk) -> list[tuple[str, str]]:
    """Add the folder's files to ``result``; returns its subfolders (name, path)."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        result.problems.append((prefix.rstrip("/") or ".",
                                f"cannot list the folder: {exc.strerror}"))
        return []
    subdirs: list[tuple[str, str]] = []
    files: dict[str, os.DirEntry[str]] = {}
    sidecars: dict[str, os.DirEntry[str]] = {}
    for entry in entries:
        rel = prefix + entry.name
        try:
            is_link = entry.is_symlink()
        except OSError:
            is_link = False
        if is_link:
            if not follow:
                result.symlinks_skipped += 1
                continue
            if not _inside(real_root, entry.path):
                result.problems.append((rel, "symlink leads out of the import folder; "
                                             "skipped"))
                continue
        try:
            if entry.is_dir(follow_symlinks=True):
                subdirs.append((entry.name, entry.path))
                continue
            if not entry.is_file(follow_symlinks=True):
                continue  # a dangling link, a device, a socket: no file to import
        except OSError as exc:  # a link loop (ELOOP), a vanished entry
            result.problems.append((rel, f"cannot read: {exc.strerror}"))
            continue
        (sidecars if entry.name.endswith(SIDECAR_SUFFIX) else files)[entry.name] = entry
    used: set[str] = set()
    for name, entry in files.items():
        rel = prefix + name
        sidecar = next((c for c in sidecar_names(name) if c in sidecars), None)
        if sidecar is not None:
            used.add(sidecar)  # a filtered-out file's sidecar is not an orphan either
        if _matches(rel, exclude) or (include and not _matches(rel, include)):
            continue
        try:
            st = entry.stat(follow_symlinks=True)
            side_st = sidecars[sidecar].stat(follow_symlinks=True) if sidecar else None
        except OSError as exc:
            result.problems.append((rel, f"cannot read: {exc.strerror}"))
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        item = FileEntry(rel, st.st_size, st.st_mtime_ns)
        if sidecar is not None and side_st is not None:
            item.sidecar = sidecar
            item.sidecar_stamp = f"{side_st.st_size}:{side_st.st_mtime_ns}"
            result.sidecars += 1
        result.files.append(item)
        result.total_bytes += st.st_size
    for name in sorted(sidecars.keys() - used):
        result.problems.append((prefix + name, "sidecar without a file beside it; "
                                               "not imported"))
    return subdirs
