"""Storage: the configured providers and the upload routing rules (spec §3.2, §6.3).

Provider *types* come from plugins (``faceforge_storage_providers``; ``fs`` and ``s3`` from
:mod:`providers`).  Each is built at start, except ``s3``, which is off until
``storage.s3.enabled`` (or the managed SeaweedFS, ``seaweed.enabled``); ``fs`` always exists,
because it is where an upload falls back to when the chosen store cannot be reached.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import msgspec

from ff_plugin_sdk.staging import StagedFile
from ff_plugin_sdk.storage import StorageContext, StorageProvider, StorageUnavailable
from ff_plugin_sdk.types import StorageProviderType
from kernel.config import Settings, read_ports
from kernel.errors import PluginError
from providers.seaweed import SeaweedError, SeaweedProcess, SeaweedSettings, find_weed, pick_s3_port

log = logging.getLogger("faceforge.storage")
FALLBACK = "fs"
#: how long an unreachable provider is skipped before it is asked again
DOWN_SECONDS = 5.0


def seaweed_s3_port(settings: Settings) -> int:
    """The SeaweedFS S3 port: the launcher's ports.json, then ``seaweed.s3_port``, then
    ``network.seaweed_s3_port``, then 43211 (spec §12.1)."""
    ports = read_ports(settings.paths)
    config = settings.config
    return pick_s3_port(ports.seaweed_s3 if ports else None, config.seaweed.s3_port,
                        config.network.seaweed_s3_port)


def s3_section(settings: Settings) -> dict[str, Any]:
    """``storage.s3``, with the endpoint derived from the SeaweedFS port when unset."""
    config = settings.config
    section = msgspec.to_builtins(config.storage.s3)
    if not section.get("endpoint_url"):
        host = config.seaweed.ip if config.seaweed.enabled else config.network.bind_host
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1"}.get(host, host)
        scheme = "https" if section.get("use_ssl") else "http"
        section["endpoint_url"] = f"{scheme}://{host}:{seaweed_s3_port(settings)}"
    return section


def seaweed_process(settings: Settings) -> SeaweedProcess | None:
    """The managed SeaweedFS when ``seaweed.enabled``; None (logged) without a ``weed``."""
    config, paths = settings.config, settings.paths
    weed = find_weed(config.seaweed.weed_path, paths.tools_dir)
    if weed is None:
        log.error("seaweed.enabled is set but no weed binary was found (seaweed.weed_path, "
                  "else %s/weed, %s/seaweedfs/weed, %s/seaweed/weed): S3 uploads are stored "
                  "on the filesystem instead", paths.tools_dir, paths.tools_dir,
                  paths.tools_dir)
        return None
    sw = config.seaweed
    return SeaweedProcess(SeaweedSettings.from_config(
        weed=weed, home=paths.home, s3_dir=paths.s3_dir, logs_dir=paths.logs_dir,
        data_dir=sw.data_dir, access_key=config.storage.s3.access_key,
        secret_key=config.storage.s3.secret_key, ip=sw.ip, master_port=sw.master_port,
        volume_port=sw.volume_port, filer_port=sw.filer_port,
        s3_port=seaweed_s3_port(settings)), logging.getLogger("faceforge.seaweed"))


def storage_context(settings: Settings) -> StorageContext:
    return StorageContext(home=settings.paths.home, assets_dir=settings.paths.assets_dir,
                          tmp_dir=settings.paths.tmp_dir, s3=s3_section(settings),
                          logger=log)


class Storage:
    """Every provider built from config, and where new blobs go."""

    def __init__(self, settings: Settings, types: list[tuple[str, StorageProviderType]],
                 ) -> None:
        self.settings = settings
        self.context = storage_context(settings)
        self.routing = settings.config.storage.routing
        self.types = {t.name: (plugin, t) for plugin, t in types}
        self.providers: dict[str, StorageProvider] = {}
        self._down_until: dict[str, float] = {}
        self.seaweed: SeaweedProcess | None = None

    async def start(self) -> None:
        """Start the managed SeaweedFS (if enabled) and build the providers.  SeaweedFS is
        not waited for: until it answers, uploads routed to S3 fall back to ``fs``."""
        if self.settings.config.seaweed.enabled:
            self.seaweed = seaweed_process(self.settings)
            if self.seaweed is not None:
                try:
                    await self.seaweed.start()
                except SeaweedError as exc:
                    log.error("SeaweedFS cannot start: %s; S3 uploads are stored on the "
                              "filesystem instead", exc)
                    self.seaweed = None
        self.open()

    def _enabled(self, name: str) -> bool:
        config = self.settings.config
        # the managed SeaweedFS is there to be used
        return name != "s3" or config.storage.s3.enabled or config.seaweed.enabled

    def open(self) -> None:
        """Build each enabled provider; a missing ``fs`` or a failing factory names the plugin."""
        if FALLBACK not in self.types:
            raise PluginError("no plugin provides the 'fs' storage provider (is the "
                              "'storage' plugin disabled?)")
        for name, (plugin, kind) in self.types.items():
            if not self._enabled(name):
                continue
            try:
                self.providers[name] = kind.factory(self.context)
            except Exception as exc:
                raise PluginError(f"plugin {plugin!r}: storage provider {name!r} cannot be "
                                  f"built: {exc}") from exc
        for name in self._routed_names():
            if name not in self.providers:
                log.warning("storage.routing names provider %r, which is not enabled; "
                            "uploads routed there go to %r", name, FALLBACK)

    def _routed_names(self) -> set[str]:
        return {self.routing.default_provider, *self.routing.kind_map.values()}

    async def close(self) -> None:
        for provider in self.providers.values():
            try:
                await provider.close()
            except Exception:
                log.exception("storage provider %r did not close cleanly", provider.name)
        if self.seaweed is not None:
            await self.seaweed.stop()

    def provider(self, name: str) -> StorageProvider:
        try:
            return self.providers[name]
        except KeyError:
            raise StorageUnavailable(
                f"the blob is held by storage provider {name!r}, which is not enabled "
                f"in {self.settings.paths.config_file}") from None

    def route(self, kind: str | None, size: int | None) -> str:
        """The provider the rules pick: ``kind_map`` (exact kind, then its family
        ``image`` for ``image.thumbnail``), then ``s3_min_size_bytes``, then the default."""
        kind_map = self.routing.kind_map
        if kind and kind in kind_map:
            return kind_map[kind]
        if kind and kind.split(".", 1)[0] in kind_map:
            return kind_map[kind.split(".", 1)[0]]
        threshold = self.routing.s3_min_size_bytes
        if threshold is not None and size is not None and size >= threshold:
            return "s3"
        return self.routing.default_provider

    async def choose(self, kind: str | None, size: int | None) -> StorageProvider:
        name = self.route(kind, size)
        provider = self.providers.get(name)
        if provider is None:
            return self.providers[FALLBACK]
        if name == FALLBACK:
            return provider
        if self._down_until.get(name, 0.0) > time.monotonic():
            return self.providers[FALLBACK]
        health = await provider.health()
        if health.ok:
            self._down_until.pop(name, None)
            return provider
        self._down_until[name] = time.monotonic() + DOWN_SECONDS
        log.warning("storage provider %r is unreachable (%s): storing on %r instead",
                    name, health.detail, FALLBACK)
        return self.providers[FALLBACK]

    def fallback(self) -> StorageProvider:
        return self.providers[FALLBACK]

    def stage(self) -> StagedFile:
        return StagedFile(self.context.tmp_dir)

    def sweep_staged(self) -> int:
        """Remove uploads a crash left half-written in ``tmp/`` (files, and the folders
        of bulk imports' batches); returns how many."""
        removed = 0
        for path in Path(self.context.tmp_dir).glob(f"{StagedFile.PREFIX}*"):
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed += 1
        return removed
