"""The FaceForge microkernel: app factory, hooks, config, database, auth, events, CLI.

The kernel knows no feature; features are plugins found through entry points.
"""

from __future__ import annotations

__version__ = "0.1.0"
