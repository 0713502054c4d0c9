"""SDK fixtures: a Core with out-of-process job types, and an SDK client talking to it in
process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ff_plugin_sdk.client import AsyncFaceForge
from tests.ff_plugin_sdk.sdk_core import in_process
from tests.plugins import job_types


@pytest.fixture
def core(make_app: Any) -> Any:
    return make_app([("testjobs", job_types)])


@pytest.fixture
async def ff(core: Any, settings: Any) -> AsyncIterator[AsyncFaceForge]:
    async with in_process(core, settings.install_token) as client:
        yield client
