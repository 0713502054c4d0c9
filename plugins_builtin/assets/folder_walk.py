"""Walking an import folder: which files to import, each with its ``_meta.json`` sidecar.

Symlinks are skipped unless followed, and a followed one must stay inside the root (its
real path is checked), so an import never reads outside the folder it was given.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator, Sequence
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
         follow_symlinks: bool) -> Walk:
    """Every importable file under ``root`` (a real, absolute folder), in a stable order."""
    include = [p.lower() for p in include]
    exclude = [p.lower() for p in exclude]
    result = Walk()
    real_root = os.path.realpath(root)
    seen_dirs = {_dir_key(real_root)}
    for prefix, folder in _folders(root, real_root, recursive, exclude, follow_symlinks,
                                   seen_dirs, result):
        _scan(folder, prefix, real_root, include, exclude, follow_symlinks, result)
    return result


def _dir_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _inside(real_root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _folders(root: Path, real_root: str, recursive: bool, exclude: Sequence[str],
             follow: bool, seen: set[tuple[int, int]],
             result: Walk) -> Iterator[tuple[str, str]]:
    """(relative prefix, path) of every folder to scan, depth first, sorted."""
    stack = [("", str(root))]
    while stack:
        prefix, folder = stack.pop()
        yield prefix, folder
        if not recursive:
            continue
        try:
            with os.scandir(folder) as it:
                subdirs = sorted((e.name, e.path, e.is_symlink()) for e in it
                                 if e.is_dir(follow_symlinks=True))
        except OSError as exc:
            result.problems.append((prefix or ".", f"cannot list the folder: {exc.strerror}"))
            continue
        for name, path, is_link in reversed(subdirs):
            rel = f"{prefix}{name}"
            if _matches(rel, exclude):
                continue
            if is_link:
                if not follow:
                    result.symlinks_skipped += 1
                    continue
                if not _inside(real_root, path):
                    result.problems.append((rel, "symlink leads out of the import folder; "
                                                 "skipped"))
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


def _scan(folder: str, prefix: str, real_root: str, include: Sequence[str],
          exclude: Sequence[str], follow: bool, result: Walk) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        if prefix:  # the root itself was checked before the job started
            result.problems.append((prefix.rstrip("/"),
                                    f"cannot list the folder: {exc.strerror}"))
        return
    files: dict[str, os.DirEntry[str]] = {}
    sidecars: dict[str, os.DirEntry[str]] = {}
    for entry in entries:
        rel = prefix + entry.name
        try:
            if entry.is_symlink():
                if not follow:
                    result.symlinks_skipped += 1
                    continue
                if not _inside(real_root, entry.path):
                    result.problems.append((rel, "symlink leads out of the import folder; "
                                                 "skipped"))
                    continue
            if not entry.is_file(follow_symlinks=True):
                continue
        except OSError as exc:
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
