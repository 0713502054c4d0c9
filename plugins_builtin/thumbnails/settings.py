"""The plugin's settings: ``plugins.thumbnails`` in ``config/core.json``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plugins_builtin.thumbnails.render import DEFAULT_MAX_PIXELS


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Read once, when the app is built: a bad value stops the build, naming it."""

    #: images worked on at once (each holds one decoded image and one source in memory)
    concurrency: int = 2
    #: larger sources are skipped (their bytes are read into memory)
    max_source_bytes: int = 100 * 1024 * 1024
    #: more pixels than this is a decompression bomb: refused, never decoded
    max_pixels: int = DEFAULT_MAX_PIXELS

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        names = ("concurrency", "max_source_bytes", "max_pixels")
        for name in config:
            if name not in names:
                raise ValueError(f"unknown setting plugins.thumbnails.{name}; expected one "
                                 f"of: {', '.join(names)}")
        values: dict[str, int] = {}
        for name, value in config.items():
            if type(value) is not int or value < 1:
                raise ValueError(f"plugins.thumbnails.{name} must be a whole number of at "
                                 f"least 1, got {value!r}")
            values[name] = value
        return cls(**values)
