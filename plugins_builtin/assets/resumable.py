"""Resumable uploads: their state, their bytes under ``tmp/``, and turning a finished one
into an asset.  The tus protocol on top of this is :mod:`plugins_builtin.assets.tus`.

An upload's bytes go to ``tmp/upload-<id>.part``; its row (table ``uploads``) says how many
of them were received (``received``) and the SHA-256 state after them, so the hash carries on
where it stopped, across requests and restarts, and never re-reads what was written.  Bytes
past ``received`` (a crash between the write and the commit) are cut off by the next append.

A PATCH is not synced to the disk (that halved the speed): a killed Core loses nothing (the
bytes are in the page cache), and after a power loss a file shorter than its row says is
noticed at the next start, re-hashed once, and the client told the smaller offset — which is
how tus resumes anyway.  The finished file is synced before it becomes an asset.

One request at a time works on an upload.  A new request on an upload that is still being
written (its client vanished without closing the connection) stops that writer, which keeps
what it had received, and takes over: so a client resuming after a dropped connection is
never locked out by its own ghost.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import hashlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import msgspec

from ff_plugin_sdk import Conflict, Kernel, NotFound, PayloadTooLarge, WriteTx
from ff_plugin_sdk.errors import FaceForgeError
from ff_plugin_sdk.staging import storage_error
from plugins_builtin.assets.ingest import Ingest, Request
from plugins_builtin.assets.sha256state import Sha256
from plugins_builtin.assets.store import AssetStore

#: bytes collected from the connection before each write (one thread hop per batch; small,
#: as a PATCH's answer waits for its last batch to be written and hashed)
BATCH_BYTES = 1024 * 1024
#: how long a request waits for the one it takes an upload over from
TAKEOVER_SECONDS = 30.0
#: sniffing reads this much of a finished upload
HEAD_BYTES = 8192
PREFIX = "upload-"
_UPLOAD_ID = re.compile("^[0-9a-f]{32}$")
_FADVISE = hasattr(os, "posix_fadvise")
_HASHER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="faceforge-tus-hash")


class UploadGone(FaceForgeError):
    status = 410
    code = "upload_expired"


class ChecksumMismatch(FaceForgeError):
    status = 460
    code = "checksum_mismatch"


def upload_not_found(upload_id: str) -> NotFound:
    return NotFound(f"no upload with id {upload_id!r} (finished long ago, terminated, or "
                    f"never created)", code="upload_not_found")


def stamp(epoch: float) -> str:
    """The one timestamp format, from seconds since the epoch."""
    whole = int(epoch)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            + f".{int((epoch - whole) * 1e6):06d}Z")


@dataclass
class Upload:
    """One upload as Core holds it while running (loaded from its row on first use)."""

    upload_id: str
    length: int
    received: int
    metadata: str
    request: dict[str, Any]
    created_at: str
    expires: float
    asset_id: str | None = None
    deduplicated: bool = False
    hasher: Sha256 = field(default_factory=Sha256)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: the running append's receive loop, stopped when another request takes over
    writer: anyio.CancelScope | None = None
    gone: bool = False

    @property
    def finished(self) -> bool:
        return self.asset_id is not None


class _Writer:
    """Appends batches to an upload's file from a worker thread, hashing alongside."""

    def __init__(self, path: Path, start: int, hasher: Sha256, check: Any) -> None:
        self.fd = os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
        self.start = start
        self.hasher = hasher
        self.check = check
        self.end = start
        os.ftruncate(self.fd, start)  # bytes past the last commit were never acknowledged
        os.lseek(self.fd, start, os.SEEK_SET)

    def write(self, data: bytes) -> None:
        hashed = _HASHER.submit(self.hasher.update, data)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            if self.check is not None:
                self.check.update(data)
            if _FADVISE:  # start writing the bytes to disk now, not all at the final fsync
                os.posix_fadvise(self.fd, self.end, len(data), os.POSIX_FADV_DONTNEED)
            self.end += len(data)
        finally:
            hashed.result()

    def rollback(self) -> None:
        os.ftruncate(self.fd, self.start)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class _UploadFile:
    """A finished upload's file as the ingest path takes it.  Unlike a staged file it is
    kept when recording fails, so the upload can be finished again."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    def discard(self) -> None:
        pass


class Uploads:
    """The resumable uploads of one Core (service ``assets.uploads``)."""

    def __init__(self, kernel: Kernel, store: AssetStore, ingest: Ingest,
                 expiry_seconds: float) -> None:
        self.kernel = kernel
        self.db = kernel.db
        self.store = store
        self.ingest = ingest
        self.expiry_seconds = expiry_seconds
        self.log = kernel.logger("assets")
        #: seconds since the epoch; tests replace it to make uploads expire
        self.clock = time.time
        self._live: dict[str, Upload] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def tmp_dir(self) -> Path:
        return Path(self.kernel.storage.context.tmp_dir)

    def path(self, upload_id: str) -> Path:
        return self.tmp_dir / f"{PREFIX}{upload_id}.part"

    def expired(self, upload: Upload) -> bool:
        return upload.expires <= self.clock()

    # -- creating and finding ------------------------------------------------------------
    async def create(self, length: int, metadata: str, request: Request) -> Upload:
        now = self.clock()
        upload = Upload(upload_id=uuid.uuid4().hex, length=length, received=0,
                        metadata=metadata, request=_request_json(request),
                        created_at=stamp(now), expires=now + self.expiry_seconds)

        def insert(tx: WriteTx) -> None:
            tx.execute("INSERT INTO uploads (upload_id, length, metadata, request, hash_state,"
                       " created_at, expires_at) VALUES (?,?,?,?,?,?,?)",
                       (upload.upload_id, length, metadata, _j(upload.request),
                        upload.hasher.state(), upload.created_at, stamp(upload.expires)))

        await self.db.write(insert)  # the row first: a file never exists without one
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            os.close(os.open(self.path(upload.upload_id), flags, 0o600))
        except OSError as exc:
            await self._forget(upload.upload_id)
            raise storage_error(exc, "a new upload") from exc
        self._live[upload.upload_id] = upload
        return upload

    async def get(self, upload_id: str) -> Upload:
        """The upload (404 when unknown, 410 when it expired)."""
        if not _UPLOAD_ID.match(upload_id):
            raise upload_not_found(upload_id)
        upload = self._live.get(upload_id) or await self._load(upload_id)
        if upload.gone:
            raise upload_not_found(upload_id)
        if self.expired(upload) and not upload.lock.locked():
            raise UploadGone(f"upload {upload_id} expired: unfinished uploads are kept "
                             f"{self.expiry_seconds:g} s after their last bytes; start again")
        return upload

    async def _load(self, upload_id: str) -> Upload:
        row = await self.db.fetchone(
            "SELECT length, received, metadata, request, hash_state, asset_id, deduplicated,"
            " created_at, expires_at FROM uploads WHERE upload_id = ?", (upload_id,))
        if upload_id in self._live:  # loaded by another request meanwhile
            return self._live[upload_id]
        if row is None:
            raise upload_not_found(upload_id)
        (length, received, metadata, request, state, asset_id, deduplicated, created,
         expires) = row
        upload = Upload(upload_id=upload_id, length=length, received=received,
                        metadata=metadata, request=msgspec.json.decode(request),
                        created_at=created, expires=_epoch(expires), asset_id=asset_id,
                        deduplicated=bool(deduplicated))
        self._live[upload_id] = upload
        if asset_id is None:
            async with upload.lock:
                await self._recover(upload, state)
        return upload

    async def _recover(self, upload: Upload, state: bytes | None) -> None:
        """Pick up an upload written before a restart: its hash from the saved state, or,
        where none could be saved or the file is shorter than the row says (the system went
        down before the bytes reached the disk), by reading the file once."""
        path = self.path(upload.upload_id)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            self.log.warning("the bytes of upload %s are gone; it starts again from 0",
                             upload.upload_id)
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            size = 0
        if state is not None and size >= upload.received:
            upload.hasher = Sha256(state)
            return
        good = min(size, upload.received)
        upload.hasher = await anyio.to_thread.run_sync(_hash_prefix, path, good)
        if good != upload.received:
            self.log.warning("upload %s had %d bytes on disk, not %d: it resumes from %d",
                             upload.upload_id, size, upload.received, good)
        upload.received = good
        await self._save(upload)

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[Upload]:
        """The upload, held by this request alone; a request still writing it is stopped
        (it keeps what it received) and waited for."""
        upload = await self.get(upload_id)
        if upload.writer is not None:
            upload.writer.cancel()
        try:
            with anyio.fail_after(TAKEOVER_SECONDS):
                await upload.lock.acquire()
        except TimeoutError:
            raise Conflict(f"upload {upload_id} is busy with another request; try again",
                           code="upload_busy") from None
        try:
            upload = await self.get(upload_id)  # it may have been terminated meanwhile
            yield upload
        finally:
            upload.lock.release()

    # -- appending -------------------------------------------------------------------------
    async def append(self, upload: Upload, chunks: AsyncIterator[bytes],
                     checksum: tuple[str, bytes] | None) -> None:
        """Append a request body at ``upload.received`` (the caller holds the upload).

        Bytes received before the client went away are kept, unless a checksum was given
        (they cannot be verified then).  A checksum mismatch, a body past the upload's
        length or a write error keeps nothing of this request."""
        path = self.path(upload.upload_id)
        before = upload.hasher.state()
        saved = Sha256(before) if before is not None else None
        check = hashlib.new(checksum[0]) if checksum else None
        room = upload.length - upload.received
        try:
            writer = await anyio.to_thread.run_sync(
                _Writer, path, upload.received, upload.hasher, check)
        except FileNotFoundError:
            raise upload_not_found(upload.upload_id) from None
        except OSError as exc:
            raise storage_error(exc, "an upload") from exc
        stopped = False  # the client went away, or another request took over
        written = 0
        pending: asyncio.Future[None] | None = None
        failure: BaseException | None = None

        async def flush(data: bytes) -> None:
            nonlocal pending, written
            if pending is not None:
                await asyncio.shield(pending)
            pending = asyncio.ensure_future(anyio.to_thread.run_sync(writer.write, data))
            written += len(data)

        try:
            batch: list[bytes] = []
            size = 0
            with anyio.CancelScope() as scope:
                upload.writer = scope
                try:
                    async for chunk in chunks:
                        if written + size + len(chunk) > room:
                            raise PayloadTooLarge(
                                f"this upload is {upload.length} bytes and "
                                f"{upload.received} are already here: at most {room} more")
                        batch.append(chunk)
                        size += len(chunk)
                        if size >= BATCH_BYTES:
                            await flush(b"".join(batch))
                            batch, size = [], 0
                except (OSError, FaceForgeError):
                    raise
                except Exception as exc:  # the client went away (ClientDisconnect)
                    self.log.info("upload %s: the client went away after %d bytes (%s)",
                                  upload.upload_id, written + size, type(exc).__name__)
                    stopped = True
            if scope.cancelled_caught:
                stopped = True
            with anyio.CancelScope(shield=True):
                if batch:
                    await flush(b"".join(batch))
                if pending is not None:
                    await pending
                if check is not None:
                    if stopped:
                        raise Conflict("the request ended before its checksum could be checked"
                                       "; nothing of it was kept", code="upload_interrupted")
                    if check.digest() != checksum[1]:  # type: ignore[index]
                        raise ChecksumMismatch(
                            f"the {checksum[0]} checksum of this request's "  # type: ignore[index]
                            f"body does not match Upload-Checksum; nothing of it was kept")
        except BaseException as exc:
            failure = exc
            raise
        finally:
            upload.writer = None
            with anyio.CancelScope(shield=True):
                if pending is not None and not pending.done():
                    await asyncio.wait([pending])
                if failure is not None:
                    written = 0
                    await anyio.to_thread.run_sync(writer.rollback)
                    upload.hasher = saved if saved is not None else (
                        await anyio.to_thread.run_sync(_hash_prefix, path, upload.received))
                await anyio.to_thread.run_sync(writer.close)
                if failure is None:
                    upload.received += written
                    upload.expires = self.clock() + self.expiry_seconds
                    await self._save(upload)
                if isinstance(failure, OSError):
                    raise storage_error(failure, "an upload") from failure

    async def _save(self, upload: Upload) -> None:
        def save(tx: WriteTx) -> None:
            tx.execute("UPDATE uploads SET received = ?, hash_state = ?, expires_at = ?"
                       " WHERE upload_id = ?", (upload.received, upload.hasher.state(),
                                                stamp(upload.expires), upload.upload_id))

        await self.db.write(save)

    # -- finishing -------------------------------------------------------------------------
    async def finish(self, upload: Upload) -> None:
        """Make the complete upload an asset, through the ingest path (the caller holds it).

        The file stays if recording fails (a full or unreachable store), so the next request
        on the upload finishes it."""
        path = self.path(upload.upload_id)
        sha256 = upload.hasher.hexdigest()
        request = await self._still_valid(Request(**upload.request), sha256)
        request.head = await anyio.to_thread.run_sync(_synced_head, path)
        asset, deduplicated = await self.ingest.staged(_UploadFile(path, upload.length),
                                                       sha256, request)
        with contextlib.suppress(OSError):
            path.unlink()  # still there when the bytes were already stored (deduplicated)
        upload.asset_id = asset["asset_id"]
        upload.deduplicated = deduplicated
        upload.expires = self.clock() + self.expiry_seconds

        def done(tx: WriteTx) -> None:
            tx.execute("UPDATE uploads SET asset_id = ?, deduplicated = ?, hash_state = NULL,"
                       " received = length, expires_at = ? WHERE upload_id = ?",
                       (upload.asset_id, int(deduplicated), stamp(upload.expires),
                        upload.upload_id))

        await self.db.write(done)

    async def _still_valid(self, request: Request, sha256: str) -> Request:
        """What was checked at creation may have changed over a long upload: links to
        entities deleted since, or a source asset deleted since, are dropped (logged) rather
        than losing the bytes."""
        live = await self.store.live_entities(list(request.entity_ids))
        dropped = [e for e in request.entity_ids if e not in live]
        if dropped:
            self.log.warning("upload finished after entities %s were deleted: not linked",
                             ", ".join(dropped))
            request.entity_ids = [e for e in request.entity_ids if e in live]
            if not request.entity_ids:
                request.role = None
        if request.derived_from is not None:
            source = await self.store.find(request.derived_from)
            if source is None or source["deleted_at"] or request.derived_from == sha256:
                self.log.warning("upload %s: derived_from_asset_id %s dropped (gone, or the "
                                 "same bytes)", sha256, request.derived_from)
                request.derived_from = None
        return request

    # -- ending ------------------------------------------------------------------------------
    async def terminate(self, upload: Upload) -> None:
        """Forget the upload and its bytes (the caller holds it)."""
        upload.gone = True
        await self._forget(upload.upload_id)

    async def _forget(self, upload_id: str) -> None:
        await self.db.write(lambda tx: tx.execute("DELETE FROM uploads WHERE upload_id = ?",
                                                  (upload_id,)))
        self._live.pop(upload_id, None)
        with contextlib.suppress(OSError):
            self.path(upload_id).unlink()

    async def sweep(self) -> int:
        """Remove expired uploads (not one being written) and stray upload files; returns
        how many uploads went."""
        removed = 0
        rows = await self.db.fetchall("SELECT upload_id FROM uploads WHERE expires_at <= ?",
                                      (stamp(self.clock()),))
        for (upload_id,) in rows:
            upload = self._live.get(upload_id)
            if upload is not None:
                if upload.lock.locked() or not self.expired(upload):
                    continue
                upload.gone = True
            await self._forget(upload_id)
            removed += 1
        # files first, rows second: a file has its row before it exists, so one found here
        # without a row (read after) is a stray, never an upload being created
        files = list(self.tmp_dir.glob(f"{PREFIX}*.part"))
        known = {r[0] for r in await self.db.fetchall("SELECT upload_id FROM uploads")}
        for path in files:
            if path.name[len(PREFIX):-len(".part")] not in known:
                with contextlib.suppress(OSError):
                    path.unlink()
        if removed:
            self.log.info("removed %d expired unfinished upload(s)", removed)
        return removed

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for upload in list(self._live.values()):
            if upload.writer is not None:  # keep what they received
                upload.writer.cancel()

    async def _sweep_forever(self) -> None:
        interval = min(max(self.expiry_seconds / 4, 1.0), 300.0)
        while True:
            try:
                await self.sweep()
            except Exception:
                self.log.exception("sweeping expired uploads failed; trying again later")
            await asyncio.sleep(interval)


def _j(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _epoch(text: str) -> float:
    whole, _, rest = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(
        "0." + (rest or "0"))


def _request_json(request: Request) -> dict[str, Any]:
    data = asdict(request)
    data.pop("head")
    data["entity_ids"] = list(data["entity_ids"])
    return data


def _hash_prefix(path: Path, size: int) -> Sha256:
    hasher = Sha256()
    with open(path, "rb") as f:
        while size > 0:
            data = f.read(min(size, 8 * 1024 * 1024))
            if not data:
                break
            hasher.update(data)
            size -= len(data)
    return hasher


def _synced_head(path: Path) -> bytes:
    """The first bytes (to sniff the type), once the whole file is on the disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        return f.read(HEAD_BYTES)
