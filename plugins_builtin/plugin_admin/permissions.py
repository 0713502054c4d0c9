"""What a plugin's permissions and kind mean, in words a user can weigh before agreeing.

API scopes are described by the plugins that declare them (the scope registry, as
``/v1/system/info`` lists it); the needs beyond the API (network, GPU, filesystem paths) are
explained here, since no plugin declares them and Core cannot hold a process to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ff_plugin_sdk.manifest import is_need
from ff_plugin_sdk.plugins import PluginView

KINDS = {
    "builtin": "Part of FaceForge Core.",
    "in_process": "A Python package running inside Core: it can read and change everything "
                  "Core can, whatever its permissions say.",
    "out_of_process": "A separate program Core starts and watches: its calls to FaceForge "
                      "carry a token holding only its API permissions.",
}
KIND_LABELS = {"builtin": "built-in", "in_process": "in process",
               "out_of_process": "separate process"}


@dataclass(frozen=True)
class Explained:
    """One permission and what it allows."""

    permission: str
    text: str
    #: an API scope some installed plugin declares (an unknown one is not granted)
    known: bool = True


def explain_need(need: str) -> str:
    kind, _, target = need.partition(":")
    if need == "network":
        return "Connect to any address on your network or the internet."
    if kind == "network":
        return f"Connect to {target} over the network."
    if need == "gpu":
        return "Use the graphics card (GPU)."
    if kind == "filesystem":
        return f"Read and write files in {target}, outside FaceForge's own folders."
    return need


def explain(permissions: Iterable[str], scopes: dict[str, dict[str, Any]]
            ) -> tuple[list[Explained], list[Explained]]:
    """(API scopes, needs beyond the API), each with its explanation; ``scopes`` is the
    scope registry (``system_info()["scopes"]``)."""
    api: list[Explained] = []
    needs: list[Explained] = []
    for permission in sorted(set(permissions)):
        if is_need(permission):
            needs.append(Explained(permission, explain_need(permission)))
        elif permission in scopes:
            api.append(Explained(permission, str(scopes[permission].get("description", ""))))
        else:
            api.append(Explained(permission, "No installed plugin provides this permission, "
                                             "so it is not granted.", known=False))
    return api, needs


def asks_consent(view: PluginView) -> bool:
    """Enabling shows the consent screen first: a third-party plugin never agreed to, or
    a new version asking for more."""
    return view.kind != "builtin" and (bool(view.needs_consent) or view.consent is None)
