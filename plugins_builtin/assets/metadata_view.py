"""An asset's ``extracted_metadata`` as the detail page shows it: generation parameters first,
then ExifTool's tags grouped by their group, long values shortened and big JSON folded.

The metadata plugin stores ``{"exiftool": {"<Group>:<Tag>": value}, "generation":
{"source": ..., ...}}``, maybe with an ``"error"``; anything else it adds is shown as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ff_plugin_sdk.jsontext import NotJson, parse_json

#: a value longer than this shows its beginning and a "show all"
SHORT_CHARS = 160
#: pretty JSON longer than this (a ComfyUI workflow) starts folded
LARGE_JSON_CHARS = 1200
#: groups that describe the file on disk or ExifTool itself, not the picture: start folded
FOLDED_GROUPS = frozenset({"System", "ExifTool"})
#: ExifTool's path of the file it read (a temporary name): says nothing about the asset
SKIPPED_TAGS = frozenset({"SourceFile"})
OTHER_GROUP = "Other"


@dataclass(frozen=True)
class Value:
    """``text`` whole; ``short`` its beginning when long; ``json`` for pretty JSON, ``large``
    when that should start folded (``summary`` says what is inside)."""

    text: str
    short: str | None = None
    json: bool = False
    large: bool = False
    summary: str = ""


@dataclass
class Group:
    name: str
    rows: list[tuple[str, Value]] = field(default_factory=list)

    @property
    def folded(self) -> bool:
        return self.name in FOLDED_GROUPS


@dataclass
class MetadataView:
    error: str | None = None
    source: str | None = None
    #: free text such as Automatic1111's ``parameters`` (prompt, steps, sampler...)
    prompts: list[tuple[str, str]] = field(default_factory=list)
    generation: list[tuple[str, Value]] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    other: list[tuple[str, Value]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.error or self.source or self.prompts or self.generation
                    or self.groups or self.other)


def _as_json(value: Any) -> Any | None:
    """A JSON object or array, given as one or as text (PNG chunks hold JSON as text)."""
    if isinstance(value, dict | list):
        return value
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            parsed = parse_json(value)
        except NotJson:
            return None
        return parsed if isinstance(parsed, dict | list) else None
    return None


def _describe(data: dict[str, Any] | list[Any], chars: int) -> str:
    what = (f"JSON object, {len(data)} {'key' if len(data) == 1 else 'keys'}"
            if isinstance(data, dict)
            else f"JSON array, {len(data)} {'item' if len(data) == 1 else 'items'}")
    return f"{what}, {chars:,} characters"


def value(raw: Any) -> Value:
    """One value for the page: JSON pretty-printed (folded when big), text shortened."""
    data = _as_json(raw)
    if data is not None:
        text = json.dumps(data, indent=2, ensure_ascii=False)
        return Value(text, json=True, large=len(text) > LARGE_JSON_CHARS,
                     summary=_describe(data, len(text)))
    # numbers, booleans and null as JSON writes them
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    if len(text) > SHORT_CHARS or "\n" in text.strip():
        first = text.strip().split("\n", 1)[0]
        return Value(text, short=first[:SHORT_CHARS].rstrip() + "…")
    return Value(text)


def _is_prompt(raw: Any) -> bool:
    return isinstance(raw, str) and bool(raw.strip()) and _as_json(raw) is None


def view(metadata: dict[str, Any]) -> MetadataView:
    """The page's reading of ``extracted_metadata`` (anything unexpected shown as it is)."""
    shown = MetadataView()
    if not isinstance(metadata, dict):
        return shown
    for key, raw in metadata.items():
        if key == "error":
            shown.error = raw if isinstance(raw, str) else json.dumps(raw)
        elif key == "exiftool" and isinstance(raw, dict):
            shown.groups = _groups(raw)
        elif key == "generation" and isinstance(raw, dict):
            _generation(shown, raw)
        else:
            shown.other.append((key, value(raw)))
    return shown


def _generation(shown: MetadataView, generation: dict[str, Any]) -> None:
    """Prompts as text; AUTOMATIC1111's settings and a safetensors ``metadata`` one row per
    entry; anything else (ComfyUI's ``prompt`` and ``workflow`` graphs) as a value."""
    parsed = generation.get("parsed")
    if isinstance(parsed, dict):
        for key, label in (("prompt", "Prompt"), ("negative_prompt", "Negative prompt")):
            if _is_prompt(parsed.get(key)):
                shown.prompts.append((label, parsed[key]))
        settings = parsed.get("settings")
        if isinstance(settings, dict):
            shown.generation += [(name, value(item)) for name, item in settings.items()]
    for key, raw in generation.items():
        if key == "source" and isinstance(raw, str):
            shown.source = raw
        elif key == "parsed" and isinstance(parsed, dict):
            continue
        elif key == "parameters" and isinstance(parsed, dict):
            shown.generation.append(("parameters (as written)", value(raw)))
        elif _is_prompt(raw) and (len(raw) > 40 or "\n" in raw):
            shown.prompts.append((key, raw))
        elif key == "metadata" and isinstance(raw, dict):
            # a safetensors header's __metadata__: ss_* training settings
            shown.generation += [(name, value(item)) for name, item in raw.items()]
        else:
            shown.generation.append((key, value(raw)))


def _groups(tags: dict[str, Any]) -> list[Group]:
    groups: dict[str, Group] = {}
    for name, raw in tags.items():
        if name in SKIPPED_TAGS:
            continue
        group, colon, tag = name.partition(":")
        if not colon:
            group, tag = OTHER_GROUP, name
        groups.setdefault(group, Group(group)).rows.append((tag, value(raw)))
    # the picture's own groups first, the file system's and ExifTool's last
    return sorted(groups.values(), key=lambda g: g.folded)
