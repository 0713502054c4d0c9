"""``config/core.json``, ``config/ports.json`` and env overrides -> :class:`Settings`.

Nothing is read at import; :func:`load_settings` is called by the CLI and the app factory.
A bad file is a :class:`ConfigError` whose one-line message names the file and the key.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec

from kernel.errors import ConfigError
from kernel.home import Paths, build_paths, private_dir, resolve_home
from kernel.plugins import parse_disabled

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 43210


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class AuthConfig(_Section):
    install_token: str | None = None
    #: a UI session ends this long after sign-in ...
    session_ttl_hours: Annotated[int, msgspec.Meta(ge=1)] = 24 * 14
    #: ... or after this long without a request
    session_idle_minutes: Annotated[int, msgspec.Meta(ge=1)] = 12 * 60


class NetworkConfig(_Section):
    bind_host: str = DEFAULT_HOST
    core_port: int = DEFAULT_PORT
    seaweed_s3_port: int | None = None


class PathsConfig(_Section):
    db_dir: str | None = None
    assets_dir: str | None = None
    s3_dir: str | None = None
    logs_dir: str | None = None
    tools_dir: str | None = None
    plugins_dir: str | None = None


class ToolsConfig(_Section):
    exiftool_enabled: bool = True
    exiftool_path: str | None = None


class StorageRoutingConfig(_Section):
    default_provider: str = "fs"
    kind_map: dict[str, str] = {}
    s3_min_size_bytes: int | None = None


class S3Config(_Section):
    enabled: bool = False
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    bucket: str = "faceforge"
    region: str = "us-east-1"
    use_ssl: bool = False
    #: ``bucket`` in the path (SeaweedFS, Ceph, MinIO) rather than the host name (AWS)
    path_style: bool = True
    verify_tls: bool = True


class StorageConfig(_Section):
    routing: StorageRoutingConfig = msgspec.field(default_factory=StorageRoutingConfig)
    s3: S3Config = msgspec.field(default_factory=S3Config)


class SeaweedConfig(_Section):
    enabled: bool = False
    weed_path: str | None = None
    data_dir: str | None = None
    ip: str = DEFAULT_HOST
    master_port: int = 9333
    volume_port: int = 8080
    filer_port: int = 8888
    s3_port: int | None = None


DEFAULT_BODY_BYTES = 2 * 1024 * 1024


class LimitsConfig(_Section):
    #: largest request body accepted by any route (API, UI forms, sign-in), in bytes;
    #: routes that take files declare their own
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1)] = DEFAULT_BODY_BYTES
    #: the earlier name of ``max_body_bytes``; used while ``max_body_bytes`` is not changed
    max_json_body_bytes: Annotated[int, msgspec.Meta(ge=1)] | None = None

    @property
    def body_bytes(self) -> int:
        if self.max_body_bytes != DEFAULT_BODY_BYTES or self.max_json_body_bytes is None:
            return self.max_body_bytes
        return self.max_json_body_bytes


class LoggingConfig(_Section):
    level: str = "INFO"
    max_bytes: int = 10 * 1024 * 1024
    backup_count: int = 5
    access_log: bool = True


class CoreConfig(_Section):
    version: str = "1"
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    network: NetworkConfig = msgspec.field(default_factory=NetworkConfig)
    paths: PathsConfig = msgspec.field(default_factory=PathsConfig)
    tools: ToolsConfig = msgspec.field(default_factory=ToolsConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    seaweed: SeaweedConfig = msgspec.field(default_factory=SeaweedConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    #: per-plugin settings, keyed by plugin name
    plugins: dict[str, dict[str, Any]] = {}


class PortsFile(msgspec.Struct, kw_only=True):
    core: int | None = None
    seaweed_s3: int | None = None


@dataclass
class Settings:
    """Everything Core needs to start, resolved once."""

    paths: Paths
    config: CoreConfig
    host: str
    port: int
    disabled_plugins: frozenset[str] = frozenset()

    @property
    def install_token(self) -> str:
        assert self.config.auth.install_token
        return self.config.auth.install_token


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _msgspec_key(exc: msgspec.ValidationError) -> tuple[str, str]:
    """Split msgspec's "Expected `int`, got `str` - at `$.network.core_port`"."""
    text = str(exc)
    match = re.search(r" - at `\$\.?(.*)`$", text)
    if not match:
        unknown = re.search(r"unknown field `(.+?)`", text)
        return (unknown.group(1) if unknown else "(top level)"), text
    return (match.group(1) or "(top level)"), text[: match.start()]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path} is not valid JSON: nested too deeply") from None


def write_private_json(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically and owner-only (mode 0600).

    The bytes go to a new temporary file in the same folder, created 0600 from the start
    (``mkstemp``: ``O_EXCL``, never a looser moment), are fsync'd, then renamed over ``path``,
    and (POSIX) the folder is fsync'd so the rename survives a power cut.  A failure at any
    step leaves the previous file as it was and no temporary file behind.
    """
    text = json.dumps(data, indent=2) + "\n"  # fails (if it does) before any file is touched
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if os.name == "posix":  # exactly 0600, whatever the umask
                os.fchmod(fh.fileno(), 0o600)
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if os.name == "posix":  # Windows cannot open a folder to sync it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_config(path: Path) -> CoreConfig:
    """Read core.json, creating it with defaults and a fresh install token on first start."""
    if not path.exists():
        config = CoreConfig(auth=AuthConfig(install_token=new_token()))
        write_private_json(path, msgspec.to_builtins(config))
        return config
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    try:
        config = msgspec.convert(raw, CoreConfig)
    except msgspec.ValidationError as exc:
        key, why = _msgspec_key(exc)
        raise ConfigError(f"{path}: invalid value for '{key}': {why}") from exc
    changed = False
    if not config.auth.install_token:
        # First start with a hand-written file: add the token, keep everything else as written.
        config.auth.install_token = new_token()
        raw.setdefault("auth", {})["install_token"] = config.auth.install_token
        changed = True
    s3 = config.storage.s3
    if config.seaweed.enabled and not (s3.access_key and s3.secret_key):
        # The managed SeaweedFS is never anonymous: give it credentials of its own.
        s3.access_key, s3.secret_key = f"ff{secrets.token_hex(8)}", new_token()
        section = raw.setdefault("storage", {}).setdefault("s3", {})
        section.update(access_key=s3.access_key, secret_key=s3.secret_key)
        changed = True
    if changed:
        write_private_json(path, raw)
    elif os.name == "posix" and path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return config


def rotate_token(path: Path) -> str:
    """Replace the install token in core.json, keeping every other key as written."""
    raw = _read_json(path) if path.exists() else msgspec.to_builtins(CoreConfig())
    token = new_token()
    raw.setdefault("auth", {})["install_token"] = token
    write_private_json(path, raw)
    return token


def read_ports(paths: Paths) -> PortsFile | None:
    """The launcher-selected ports: config/ports.json, else legacy runtime/ports.json."""
    for path in (paths.ports_file, paths.legacy_ports_file):
        if path.exists():
            try:
                return msgspec.convert(_read_json(path), PortsFile)
            except msgspec.ValidationError as exc:
                key, why = _msgspec_key(exc)
                raise ConfigError(f"{path}: invalid value for '{key}': {why}") from exc
    return None


def write_ports(paths: Paths, core_port: int) -> None:
    """Record the port Core listens on in config/ports.json, keeping the other entries."""
    current = read_ports(paths) or PortsFile()
    write_private_json(paths.ports_file, {"core": core_port, "seaweed_s3": current.seaweed_s3})


def _port(value: str | int, source: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: port must be a whole number, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{source}: port must be between 0 and 65535, got {port}")
    return port


def load_settings(
    home: str | os.PathLike[str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve home, create its folders, read config; explicit arguments beat env and files.

    Port precedence: ``port`` argument, ``FACEFORGE_PORT``, ports.json, core.json.
    Host precedence: ``host`` argument, ``FACEFORGE_BIND``, core.json.
    """
    env = dict(os.environ if env is None else env)
    root = resolve_home(home, env)
    try:  # owner-only from the start: core.json holds the install token
        private_dir(root)
        private_dir(root / "config")
    except OSError as exc:
        raise ConfigError(f"cannot create folder under {root}: {exc}") from exc
    config = load_config(root / "config" / "core.json")
    paths = build_paths(root, msgspec.to_builtins(config.paths))
    try:
        paths.create()
    except OSError as exc:
        raise ConfigError(f"cannot create folder under {root}: {exc}") from exc

    if port is not None:
        chosen = _port(port, "--port")
    elif env.get("FACEFORGE_PORT"):
        chosen = _port(env["FACEFORGE_PORT"], "FACEFORGE_PORT")
    else:
        ports = read_ports(paths)
        if ports and ports.core is not None:
            chosen = _port(ports.core, f"{paths.ports_file}: core")
        else:
            chosen = _port(config.network.core_port, f"{paths.config_file}: network.core_port")
    return Settings(
        paths=paths,
        config=config,
        host=host or env.get("FACEFORGE_BIND") or config.network.bind_host,
        port=chosen,
        disabled_plugins=parse_disabled(env.get("FACEFORGE_DISABLE_PLUGINS")),
    )
