"""The SDK's assets: streamed and resumable (tus) uploads, whole, ranged and resumed
downloads, derived assets and entity links — against a real Core, in process and on a
socket behind a relay that breaks connections."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ff_plugin_sdk import NotFound, ValidationFailed
from ff_plugin_sdk.client import AsyncFaceForge, Retry, Unreachable
from ff_plugin_sdk.errors import FaceForgeError, RangeNotSatisfiable
from tests.ff_plugin_sdk.sdk_core import Relay, Served, blob, in_process


class Recording(httpx.AsyncBaseTransport):
    """The real transport, noting each request's method, path and Range."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path, request.headers.get("range")))
        return await self.inner.handle_async_request(request)


@pytest.fixture
def recorder(app: Any) -> Recording:
    return Recording(httpx.ASGITransport(app=app, raise_app_exceptions=False))


@pytest.fixture
async def ff(app: Any, settings: Any, recorder: Recording) -> AsyncIterator[AsyncFaceForge]:
    async with in_process(app, settings.install_token, transport=recorder) as client:
        yield client


@pytest.fixture
def served(app: Any) -> Iterator[Served]:
    with Served(app) as server:
        yield server


async def test_upload_from_a_path_bytes_a_file_and_iterables(ff: AsyncFaceForge,
                                                             tmp_path: Path) -> None:
    person = await ff.entities.create("Model")
    path = tmp_path / "weights.bin"
    path.write_bytes(blob(300_000))
    first = await ff.assets.upload(path, kind="model.lora", entity_ids=[person.entity_id],
                                   role="trained", meta={"steps": 10})
    assert first.asset_id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (first.filename, first.size, first.kind) == ("weights.bin", 300_000, "model.lora")
    assert first.linked_entity_ids == [person.entity_id]
    assert first.user_metadata == {"steps": 10} and not first.deduplicated

    again = await ff.assets.upload(path.read_bytes(), filename="again.bin")
    assert again.asset_id == first.asset_id and again.deduplicated
    with open(path, "rb") as fh:
        fh.seek(100_000)
        tail = await ff.assets.upload(fh, filename="tail.bin")
    assert tail.size == 200_000 and tail.filename == "tail.bin"
    chunks = [blob(1000, seed=2), blob(5000, seed=3)]
    from_list = await ff.assets.upload(iter(chunks), filename="Überweisung «1».txt")
    assert from_list.filename == "Überweisung «1».txt" and from_list.size == 6000

    async def produce() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    from_async = await ff.assets.upload(produce(), filename="async.bin")
    assert from_async.asset_id == from_list.asset_id and from_async.deduplicated
    assert [a.role for a in (await ff.assets.linked(person.entity_id)).items] == ["trained"]


async def test_an_upload_refused_names_the_problem(ff: AsyncFaceForge) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await ff.assets.upload(b"x", kind="Not A Kind")
    assert refused.value.status == 422 and refused.value.details
    with pytest.raises(NotFound) as missing:
        await ff.assets.upload(b"x", entity_ids=["0" * 64])
    assert missing.value.code == "entity_not_found"


async def test_records_links_and_derived_assets(ff: AsyncFaceForge) -> None:
    person = await ff.entities.create("Someone")
    source = await ff.assets.upload(blob(2000), filename="photo.jpg")
    made = await ff.assets.upload(blob(500, seed=9), filename="lora.safetensors",
                                  kind="model.lora", derived_from=source.asset_id)
    assert made.derived_from_asset_id == source.asset_id
    assert [a.asset_id for a in (await ff.assets.derived(source.asset_id)).items] == [
        made.asset_id]
    assert [a.asset_id async for a in ff.assets.every(derived_from=source.asset_id)] == [
        made.asset_id]

    linked = await ff.assets.link(person.entity_id, made.asset_id, role="output")
    assert linked.linked_entity_ids == [person.entity_id]
    assert (await ff.assets.linked(person.entity_id)).items[0].role == "output"
    await ff.assets.unlink(person.entity_id, made.asset_id)
    with pytest.raises(NotFound) as no_link:
        await ff.assets.unlink(person.entity_id, made.asset_id)
    assert no_link.value.code == "link_not_found"

    renamed = await ff.assets.update(made.asset_id, filename="final.safetensors",
                                     user_metadata={"rank": 8}, if_version=made.version)
    assert renamed.filename == "final.safetensors" and renamed.user_metadata == {"rank": 8}
    await ff.assets.delete(made.asset_id)
    with pytest.raises(NotFound):
        await ff.assets.get(made.asset_id)


async def test_downloads_whole_ranged_and_streamed(ff: AsyncFaceForge, tmp_path: Path) -> None:
    data = blob(1_000_000)
    asset = await ff.assets.upload(data, filename="data.bin")
    whole = await ff.assets.download(asset.asset_id, tmp_path / "whole.bin")
    assert whole.read_bytes() == data and not (tmp_path / "whole.bin.part").exists()
    part = await ff.assets.download(asset.asset_id, tmp_path / "part.bin", offset=1000,
                                    length=5000)
    assert part.read_bytes() == data[1000:6000]
    chunks = [c async for c in ff.assets.stream(asset.asset_id, offset=999_000)]
    assert b"".join(chunks) == data[999_000:]
    assert b"".join([c async for c in ff.assets.stream(asset.asset_id, length=10)]) == data[:10]
    with pytest.raises(RangeNotSatisfiable) as past:
        [c async for c in ff.assets.stream(asset.asset_id, offset=2_000_000)]
    assert past.value.status == 416
    with pytest.raises(NotFound):
        await ff.assets.download("f" * 64, tmp_path / "nothing.bin")


async def test_a_partial_download_is_continued_and_checked(ff: AsyncFaceForge,
                                                           recorder: Recording,
                                                           tmp_path: Path) -> None:
    data = blob(400_000)
    asset = await ff.assets.upload(data, filename="big.bin")
    target = tmp_path / "big.bin"
    target.with_name("big.bin.part").write_bytes(data[:123_456])
    recorder.seen.clear()
    await ff.assets.download(asset.asset_id, target)
    assert target.read_bytes() == data
    assert recorder.seen == [("GET", f"/v1/assets/{asset.asset_id}/download",
                              "bytes=123456-")]

    complete = tmp_path / "done.bin"
    complete.with_name("done.bin.part").write_bytes(data)  # finished, never renamed
    await ff.assets.download(asset.asset_id, complete)
    assert complete.read_bytes() == data

    wrong = tmp_path / "wrong.bin"
    wrong.with_name("wrong.bin.part").write_bytes(b"not the same bytes")
    with pytest.raises(FaceForgeError) as corrupt:
        await ff.assets.download(asset.asset_id, wrong)
    assert corrupt.value.code == "download_corrupt"
    assert not wrong.exists() and not wrong.with_name("wrong.bin.part").exists()
    await ff.assets.download(asset.asset_id, wrong)  # starts afresh
    assert wrong.read_bytes() == data


async def test_resumable_upload_in_chunks(ff: AsyncFaceForge, recorder: Recording,
                                          tmp_path: Path) -> None:
    path = tmp_path / "film.bin"
    path.write_bytes(blob(1_000_000, seed=7))
    created: list[str] = []
    asset = await ff.assets.upload_resumable(path, chunk_bytes=256 * 1024, kind="video.raw",
                                             on_created=created.append, meta={"a": 1})
    assert asset.asset_id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (asset.size, asset.kind, asset.filename) == (1_000_000, "video.raw", "film.bin")
    assert asset.user_metadata == {"a": 1} and not asset.deduplicated
    patches = [path_ for method, path_, _ in recorder.seen if method == "PATCH"]
    assert patches == created * 4
    again = await ff.assets.upload_resumable(io.BytesIO(path.read_bytes()))
    assert again.asset_id == asset.asset_id and again.deduplicated
    empty = await ff.assets.upload_resumable(b"", filename="empty.txt")
    assert empty.size == 0
    with pytest.raises(TypeError, match="resumable"):
        await ff.assets.upload_resumable(iter([b"x"]))


async def test_a_resumable_upload_continues_where_core_stands(ff: AsyncFaceForge,
                                                              tmp_path: Path) -> None:
    """Another process (a crash, a restart) started it: the next call asks Core for its
    offset and sends only the rest."""
    path = tmp_path / "model.bin"
    data = blob(700_000, seed=5)
    path.write_bytes(data)
    created = await ff.http.post("/v1/uploads", headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
        "Upload-Metadata": "filename bW9kZWwuYmlu"})
    url = created.headers["location"]
    sent = await ff.http.patch(url, content=data[:300_000], headers={
        "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream"})
    assert sent.status_code == 204
    asset = await ff.assets.upload_resumable(path, upload_url=url, chunk_bytes=100_000)
    assert asset.asset_id == hashlib.sha256(data).hexdigest() and asset.size == 700_000
    assert asset.filename == "model.bin"
    with pytest.raises(NotFound):
        await ff.assets.upload_resumable(path, upload_url="/v1/uploads/" + "0" * 32)


async def test_transfers_survive_dropped_connections(served: Served, settings: Any,
                                                     tmp_path: Path) -> None:
    data = blob(3_000_000, seed=11)
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    with Relay(served.port) as relay:
        async with AsyncFaceForge(relay.url, settings.install_token,
                                  retries=Retry(retries=5, backoff=0.01)) as ff:
            relay.cut("up", 1_500_000)  # in the middle of the first chunk
            asset = await ff.assets.upload_resumable(path, chunk_bytes=2_000_000)
            assert asset.asset_id == hashlib.sha256(data).hexdigest()
            connections = relay.connections
            relay.cut("down", 1_000_000)
            got = await ff.assets.download(asset.asset_id, tmp_path / "copy.bin")
            assert got.read_bytes() == data
            relay.cut("down", 2_000_000)
            streamed = b"".join([c async for c in ff.assets.stream(asset.asset_id)])
            assert streamed == data
            assert relay.connections >= connections + 2  # each cut was reconnected
            relay.refuse = True
            relay.drop()
            with pytest.raises(Unreachable):
                await ff.assets.get(asset.asset_id)


def test_big_files_stream_through_flat_memory(served: Served, settings: Any,
                                              tmp_path: Path) -> None:
    """A 256 MiB file up (plainly and over tus) and down, in a process of its own whose
    peak memory is measured: it stays far below the file's size."""
    path = tmp_path / "big.bin"
    with open(path, "wb") as fh:
        for n in range(256):
            fh.write(bytes([n]) * (1 << 20))
    script = textwrap.dedent(f"""
        import resource, sys
        from ff_plugin_sdk.client import FaceForge
        def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        with FaceForge({served.url!r}, {settings.install_token!r}) as ff:
            ff.system.ping()
            before = peak()
            one = ff.assets.upload({str(path)!r})
            two = ff.assets.upload_resumable({str(path)!r}, chunk_bytes=32 << 20)
            ff.assets.download(one.asset_id, {str(tmp_path / "back.bin")!r})
            assert one.asset_id == two.asset_id and two.deduplicated, (one, two)
            print(one.asset_id, peak() - before)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=os.environ | {"PYTHONPATH": str(Path.cwd())})
    assert done.returncode == 0, done.stderr[-3000:]
    asset_id, growth = done.stdout.split()
    assert asset_id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert int(growth) < 64 * 2**20, f"the client grew by {int(growth) / 2**20:.0f} MiB"
    assert (tmp_path / "back.bin").stat().st_size == 256 * 2**20
