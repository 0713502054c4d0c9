"""The filesystem provider tells where a blob is, for programs that need a path."""

from __future__ import annotations

import hashlib
from pathlib import Path

from providers.fs import FilesystemProvider


async def test_local_path_is_the_stored_file(tmp_path: Path) -> None:
    provider = FilesystemProvider(tmp_path / "assets", tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    (tmp_path / "assets").mkdir()  # made by the home at start
    data = b"a blob read in place by ExifTool"

    async def chunks():
        yield data

    blob = await provider.write(chunks())
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    path = provider.local_path(blob.sha256)
    assert path is not None and path.read_bytes() == data
    assert provider.local_path("../../etc/passwd") is None
