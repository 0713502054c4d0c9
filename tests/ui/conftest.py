"""UI fixtures: a signed-in browser session on the running Core."""

from __future__ import annotations

import httpx
import pytest

from kernel.config import Settings
from tests.ui.browsing import SignedIn, sign_in


@pytest.fixture
async def ui(anon: httpx.AsyncClient, settings: Settings) -> SignedIn:
    """``anon`` signed in through the login form (cookie session, no token header)."""
    return await sign_in(anon, settings.install_token)
