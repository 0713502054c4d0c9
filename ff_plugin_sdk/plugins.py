"""What Core says about an installed plugin (``GET /v1/plugins``), shared by the API, the
plugins page and the HTTP client."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

State = Literal["enabled", "disabled", "error"]
Kind = Literal["builtin", "in_process", "out_of_process"]


class RunnerView(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """The plugin's supervised process."""

    state: Literal["starting", "running", "restarting", "failing", "stopped"]
    pid: int | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    started_at: str | None = None
    message: str | None = None
    #: the newest lines of ``logs/plugins/<id>.log`` (redacted); on ``GET /v1/plugins/{id}``
    log_tail: list[str] = []


class Consent(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """What the user agreed to when enabling, and for which version of the manifest."""

    version: str
    permissions: list[str]
    at: str


class PluginView(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    id: str
    name: str
    version: str
    kind: Kind
    state: State
    #: why the plugin is in ``error`` (or why it was disabled by Core)
    reason: str | None = None
    description: str = ""
    #: Core cannot work without it: it cannot be disabled
    required: bool = False
    capabilities: list[str] = []
    #: everything the manifest asks for: API scopes and non-API needs
    permissions: list[str] = []
    #: the API scopes its token carries (out-of-process plugins)
    scopes: list[str] = []
    #: network, GPU, filesystem paths
    needs: list[str] = []
    #: permissions the user has not agreed to yet: enabling asks for them
    needs_consent: list[str] = []
    consent: Consent | None = None
    job_types: list[str] = []
    routes_prefix: str | None = None
    config_schema: dict[str, Any] | None = None
    #: the folder (out-of-process) or the Python distribution and module (in-process)
    source: str = ""
    runner: RunnerView | None = None


class PluginPage(msgspec.Struct, kw_only=True):
    items: list[PluginView]


class EnableRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: the permissions the user agreed to; must cover what the manifest asks for
    accept_permissions: list[str] = []
