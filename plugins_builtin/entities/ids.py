"""Ids of what this plugin creates: SHA-256 hex of 32 random bytes (DESIGN §4)."""

from __future__ import annotations

import hashlib
import os


def new_id() -> str:
    return hashlib.sha256(os.urandom(32)).hexdigest()
