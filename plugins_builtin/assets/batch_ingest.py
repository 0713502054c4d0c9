"""Ingesting a batch of files from a folder: the bulk form of :class:`Ingest`.

Per batch: the files are copied into ``tmp/`` while hashed (small ones in one worker-thread
trip for the whole batch), placed with one durability sync for the lot (a provider's
``write_files``), then recorded in one transaction together with the import records; the
plugins hear of each new asset afterwards, as for an upload.  Dedupe, routing to a
provider and the fallback to ``fs`` are the ingest path's own rules.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import stat
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ff_plugin_sdk import Kernel, WriteTx
from ff_plugin_sdk.jsontext import parse_json
from ff_plugin_sdk.staging import StagedFile
from ff_plugin_sdk.storage import StorageProvider, StorageUnavailable
from plugins_builtin.assets.api import MAX_META_BYTES
from plugins_builtin.assets.folder_walk import FileEntry
from plugins_builtin.assets.ingest import Ingest
from plugins_builtin.assets.kinds import default_kind, sniff_mime
from plugins_builtin.assets.receive import SNIFF_BYTES, clean_filename
from plugins_builtin.assets.store import AssetStore, Recorded, link_live

#: threads copying a batch's small files
COPY_THREADS = 4
#: files larger than this are copied in pieces, one thread trip each, so a cancel is
#: heard between pieces rather than after a multi-GB file
LARGE_BYTES = 16 * 1024 * 1024
PIECE_BYTES = 4 * 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: staged file names: this process's random prefix and a counter (cheaper than a uuid each)
_RUN = uuid.uuid4().hex
_NUMBERS = itertools.count()


@dataclass
class Outcome:
    """What a batch (or a whole import) did."""

    files: int = 0
    imported: int = 0
    deduplicated: int = 0
    unchanged: int = 0
    failed: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        for f in fields(self):
            if f.name != "problems":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def counts(self) -> dict[str, int]:
        return {"imported": self.imported, "deduplicated": self.deduplicated,
                "unchanged": self.unchanged, "failed": self.failed}

    def summary(self) -> str:
        return (f"{self.files} file(s): {self.imported} imported, {self.deduplicated} "
                f"already stored, {self.unchanged} unchanged, {self.failed} failed")


@dataclass
class Copied:
    """One file copied into ``tmp/`` (or why it could not be)."""

    entry: FileEntry
    staged: Path | None = None
    sha256: str = ""
    size: int = 0
    mtime_ns: int = 0
    #: the first bytes, while copying; sniffed into ``mime`` at the end
    head: bytes = b""
    filename: str = ""
    mime: str = ""
    meta: dict[str, Any] | None = None
    problem: str | None = None
    sidecar_problem: str | None = None


class _Copy:
    """Copying one file to a new staged file while hashing it (blocking; in a thread)."""

    def __init__(self, root: str, entry: FileEntry, tmp_dir: str, follow: bool) -> None:
        self.item = Copied(entry)
        self.source = os.path.join(root, entry.relpath)
        self.tmp_dir = tmp_dir
        self.follow = follow
        self.hash = hashlib.sha256()
        self.src = self.dst = -1

    def open(self) -> bool:
        try:
            self.src = os.open(self.source, os.O_RDONLY | (0 if self.follow else _NOFOLLOW))
            st = os.fstat(self.src)
            if not stat.S_ISREG(st.st_mode):
                self.item.problem = "not a regular file any more"
                return False
            self.item.mtime_ns = st.st_mtime_ns
            name = f"{StagedFile.PREFIX}{_RUN}-{next(_NUMBERS)}.part"
            self.item.staged = Path(self.tmp_dir, name)
            self.dst = os.open(self.item.staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            self.item.problem = f"cannot read: {exc.strerror or exc}"
            return False
        return True

    def step(self, limit: int) -> bool:
        """Copy up to ``limit`` bytes; False at the end of the file."""
        done = 0
        while done < limit:
            data = os.read(self.src, min(PIECE_BYTES, limit - done))
            if not data:
                return False
            if len(self.item.head) < SNIFF_BYTES:
                self.item.head += data[:SNIFF_BYTES - len(self.item.head)]
            self.hash.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(self.dst, view):]
            done += len(data)
            self.item.size += len(data)
        return True

    def close(self) -> None:
        for fd in (self.src, self.dst):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.src = self.dst = -1
        item = self.item
        item.sha256 = self.hash.hexdigest()
        # named and sniffed here, in the copying thread: not a loop over the batch on the
        # event loop, where it held up every request for milliseconds
        item.filename = clean_filename(item.entry.relpath)
        item.mime = sniff_mime(item.head, item.filename)
        item.head = b""

    def run(self) -> Copied:
        try:
            if self.open():
                try:
                    while self.step(LARGE_BYTES):
                        pass
                except OSError as exc:
                    self.item.problem = f"cannot read: {exc.strerror or exc}"
        finally:
            self.close()
        self.read_sidecar()
        return self.item

    def read_sidecar(self) -> None:
        entry = self.item.entry
        if entry.sidecar is None or self.item.problem:
            return
        path = os.path.join(os.path.dirname(self.source), entry.sidecar)
        try:
            with open(path, "rb") as fh:
                text = fh.read(MAX_META_BYTES + 1)
        except OSError as exc:
            self.item.sidecar_problem = f"cannot read the sidecar: {exc.strerror}"
            return
        if len(text) > MAX_META_BYTES:
            self.item.sidecar_problem = f"sidecar larger than {MAX_META_BYTES} bytes; ignored"
            return
        try:
            meta = parse_json(text)
        except ValueError as exc:
            self.item.sidecar_problem = f"sidecar is not valid JSON ({exc}); ignored"
            return
        if not isinstance(meta, dict):
            self.item.sidecar_problem = "sidecar is not a JSON object; ignored"
            return
        self.item.meta = meta


def _discard(prepared: _Prepared) -> None:
    """Remove what is left of a batch's staging: the copies not placed, then its folder."""
    for item in prepared.copied:
        if item.staged is not None:
            with contextlib.suppress(OSError):
                item.staged.unlink()
            item.staged = None
    if prepared.folder is not None:
        with contextlib.suppress(OSError):
            prepared.folder.rmdir()
        prepared.folder = None


async def _discard_shielded(prepared: _Prepared) -> None:
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_discard, prepared)


@dataclass
class _Prepared:
    """A batch between its stages: copied, not yet stored."""

    number: int
    batch: Sequence[FileEntry]
    outcome: Outcome
    #: the batch's own folder under ``tmp/``: copying the next batch and placing this one
    #: do not queue for the same directory's lock
    folder: Path | None = None
    copied: list[Copied] = field(default_factory=list)
    #: assets of files an earlier import took, unchanged since
    unchanged: list[str] = field(default_factory=list)


class BatchIngest:
    def __init__(self, kernel: Kernel, store: AssetStore, ingest: Ingest) -> None:
        self.kernel = kernel
        self.store = store
        self.ingest = ingest
        self.log = kernel.logger("assets")

    async def run(self, root: Path, batches: Iterable[Sequence[FileEntry]], request: Any,
                  report: Callable[[int, Sequence[FileEntry], Outcome], None]) -> None:
        """Import ``batches`` in order, calling ``report`` after each.

        The next batch is copied while the one before is placed and recorded (two stages,
        one batch in each; a third, recording while the next is placed, made the import
        barely faster and reads during it twice as slow).  A batch once copied is stored
        whole, shielded from cancellation; a cancel leaves no staged file and no blob
        without its row.
        """
        root_key = os.path.realpath(root)
        send, receive = anyio.create_memory_object_stream[_Prepared](0)

        async def prepare_all() -> None:
            async with send:
                for number, batch in enumerate(batches, 1):
                    prepared = await self._prepare(root, root_key, number, batch, request)
                    try:
                        await send.send(prepared)
                    except BaseException:
                        await _discard_shielded(prepared)
                        raise

        async with anyio.create_task_group() as group:
            group.start_soon(prepare_all)
            try:
                async for prepared in receive:
                    try:
                        with anyio.CancelScope(shield=True):
                            await self._store(root_key, prepared, request)
                    finally:
                        await _discard_shielded(prepared)
                    report(prepared.number, prepared.batch, prepared.outcome)
            finally:
                with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
                    while True:  # a batch copied but never stored
                        await _discard_shielded(receive.receive_nowait())
                receive.close()

    async def _prepare(self, root: Path, root_key: str, number: int,
                       batch: Sequence[FileEntry], request: Any) -> _Prepared:
        """Skip what an earlier import took unchanged; copy the rest into ``tmp/``."""
        known = await self._records(root_key, batch)
        prepared = _Prepared(number, batch, Outcome(files=len(batch)))
        todo: list[FileEntry] = []
        for entry in batch:
            record = known.get(entry.relpath)
            if record is not None and record[:3] == (entry.size, entry.mtime_ns,
                                                     entry.sidecar_stamp):
                prepared.unchanged.append(record[3])
            else:
                todo.append(entry)
        prepared.outcome.unchanged = len(prepared.unchanged)
        if not todo:
            return prepared
        prepared.folder = Path(self.kernel.storage.context.tmp_dir,
                               f"{StagedFile.PREFIX}{_RUN}-batch-{next(_NUMBERS)}")
        try:
            await anyio.to_thread.run_sync(os.mkdir, prepared.folder, 0o700)
            await self._copy(root, todo, request.follow_symlinks, prepared)
        except BaseException:
            await _discard_shielded(prepared)
            raise
        return prepared

    async def _records(self, root: str,
                       batch: Sequence[FileEntry]) -> dict[str, tuple[Any, ...]]:
        """What earlier imports took from these paths: (size, mtime, sidecar, asset)."""
        rows = await self.kernel.db.fetchall(
            f"SELECT relpath, size, mtime_ns, sidecar, asset_id FROM import_files"
            f" WHERE root = ? AND relpath IN ({','.join('?' * len(batch))})",
            [root, *(e.relpath for e in batch)])
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    async def _copy(self, root: Path, entries: Sequence[FileEntry], follow: bool,
                    prepared: _Prepared) -> None:
        assert prepared.folder is not None
        tmp_dir, base, out = str(prepared.folder), str(root), prepared.copied
        small = [e for e in entries if e.size <= LARGE_BYTES]

        def copy_small(part: Sequence[FileEntry]) -> None:
            for entry in part:
                copy = _Copy(base, entry, tmp_dir, follow)
                out.append(copy.item)  # at once: a cancel must find every staged file
                copy.run()

        # file creation is mostly waiting in the kernel: a few threads copy side by side
        async with anyio.create_task_group() as group:
            for k in range(COPY_THREADS):
                group.start_soon(anyio.to_thread.run_sync, copy_small, small[k::COPY_THREADS])
        order = {entry.relpath: i for i, entry in enumerate(entries)}
        out.sort(key=lambda item: order[item.entry.relpath])
        for entry in entries:
            if entry.size > LARGE_BYTES:
                await self._copy_large(_Copy(base, entry, tmp_dir, follow), out)

    @staticmethod
    async def _copy_large(copy: _Copy, out: list[Copied]) -> None:
        out.append(copy.item)
        try:
            if await anyio.to_thread.run_sync(copy.open):
                try:
                    while await anyio.to_thread.run_sync(copy.step, LARGE_BYTES):
                        pass
                except OSError as exc:
                    copy.item.problem = f"cannot read: {exc.strerror or exc}"
        finally:
            await anyio.to_thread.run_sync(copy.close)
        await anyio.to_thread.run_sync(copy.read_sidecar)

    async def _store(self, root: str, prepared: _Prepared, request: Any) -> None:
        """Place the batch's new blobs (synced once for their bytes, once for their names),
        then record it all in one transaction."""
        good = self._good(prepared)
        links = [request.entity_id] if request.entity_id else []
        if not good and not (links and prepared.unchanged):
            return
        # the blob locks are held from "is this blob stored?" to the commit that answers it
        async with self.store.blob_locks.many({item.sha256 for item in good}):
            records = await self._place_and_describe(good, request, links)
            new = await self._record(root, prepared, good, links, records)
        prepared.outcome.imported = len(new)
        prepared.outcome.deduplicated = len(good) - len(new)
        await self._announce(new)

    @staticmethod
    def _good(prepared: _Prepared) -> list[Copied]:
        """The files copied whole; the others (and unreadable sidecars) are problems."""
        outcome = prepared.outcome
        good = []
        for item in prepared.copied:
            if item.problem:
                outcome.failed += 1
                outcome.problems.append((item.entry.relpath, item.problem))
            else:
                good.append(item)
                if item.sidecar_problem:
                    folder = item.entry.relpath.rpartition("/")[0]
                    sidecar = f"{folder}/{item.entry.sidecar}" if folder else item.entry.sidecar
                    outcome.problems.append((sidecar or item.entry.relpath,
                                             item.sidecar_problem))
        return good

    async def _record(self, root: str, prepared: _Prepared, good: list[Copied],
                      links: list[str], records: list[Recorded]) -> list[str]:
        """The rows, with the import records, in one transaction; the new assets' ids."""
        now = self.kernel.now()
        unchanged = prepared.unchanged

        def also(tx: WriteTx) -> None:
            tx.executemany(
                "INSERT INTO import_files (root, relpath, size, mtime_ns, sidecar,"
                " asset_id, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (root, relpath) DO UPDATE SET size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, sidecar = excluded.sidecar,"
                " asset_id = excluded.asset_id, imported_at = excluded.imported_at",
                [(root, item.entry.relpath, item.size, item.mtime_ns,
                  item.entry.sidecar_stamp, item.sha256, now) for item in good])
            if links and unchanged:  # an unchanged file still gets the new link
                link_live(tx, links[0], unchanged, now)

        deduplicated: list[bool] = await self.store.record_many(records, also)
        return [r.asset_id for r, again in zip(records, deduplicated, strict=True)
                if not again]

    async def _announce(self, new: list[str]) -> None:
        """The plugins hear of each new asset, as for an upload."""
        if not new:
            return
        found = await self.store.find_many(new)
        for asset_id in new:
            asset = found.get(asset_id)
            if asset is not None:
                self.kernel.asset_ingested({k: v for k, v in asset.items() if k[0] != "_"})

    async def _place_and_describe(self, good: list[Copied], request: Any,
                                  links: list[str]) -> list[Recorded]:
        """Place the blobs that are not stored yet; the rows to record, in order."""
        existing = await self.store.blob_states([item.sha256 for item in good])
        placing: dict[str, Copied] = {}
        kinds: dict[str, tuple[str, str]] = {}
        for item in good:
            kinds[item.entry.relpath] = (item.mime, request.kind
                                         or default_kind(item.mime, item.filename))
            state = existing.get(item.sha256)
            if (state is None or state[1] == "removed") and item.sha256 not in placing:
                placing[item.sha256] = item
        providers = await self._place(placing, kinds)
        records = []
        for item in good:
            mime, kind = kinds[item.entry.relpath]
            state = existing.get(item.sha256)
            provider = providers.get(item.sha256) or (state[2] if state else "fs")
            stored_now = placing.get(item.sha256) is item
            records.append(Recorded(
                asset_id=item.sha256, size=item.size, provider=provider,
                bucket=getattr(self.kernel.storage.providers.get(provider), "bucket", None),
                kind=kind, filename=item.filename, mime_type=mime,
                meta=item.meta, kind_given=request.kind is not None, derived_from=None,
                links=links, role=None, store_blob=stored_now))
        return records

    async def _place(self, placing: dict[str, Copied],
                     kinds: dict[str, tuple[str, str]]) -> dict[str, str]:
        """Hand each new blob to its provider (many at once where it can); returns the
        provider each blob went to."""
        storage = self.kernel.storage
        groups: dict[str, list[Copied]] = {}
        chosen: dict[str, StorageProvider] = {}
        for item in placing.values():
            provider = await storage.choose(kinds[item.entry.relpath][1], item.size)
            chosen[provider.name] = provider
            groups.setdefault(provider.name, []).append(item)
        placed: dict[str, str] = {}
        for name, items in groups.items():
            try:
                await self._write(chosen[name], items, placed)
            except StorageUnavailable as exc:
                fallback = storage.fallback()
                if chosen[name] is fallback:
                    raise
                self.log.warning("storage provider %r failed during a bulk import (%s): "
                                 "storing on %r instead", name, exc.message, fallback.name)
                await self._write(fallback, [i for i in items if i.staged is not None],
                                  placed)
        return placed

    @staticmethod
    async def _write(provider: StorageProvider, items: list[Copied],
                     placed: dict[str, str]) -> None:
        """Store ``items`` on ``provider``; ``placed`` learns where each one went."""
        many = getattr(provider, "write_files", None)
        if many is not None:
            await many([(i.staged, i.sha256, i.size) for i in items])
            for item in items:
                item.staged = None
                placed[item.sha256] = provider.name
            return
        for item in items:
            assert item.staged is not None
            await provider.write_file(item.staged, item.sha256, item.size)
            item.staged = None
            placed[item.sha256] = provider.name
