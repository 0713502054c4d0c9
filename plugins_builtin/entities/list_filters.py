"""The entity list page's external-id filter: ``stash:1234`` typed in the toolbar, read
as the API reads its ``external_id`` parameter, and checked against the API's namespace and
value rules so that a malformed one gets a message instead of an empty list or an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ff_plugin_sdk import ValidationFailed
from plugins_builtin.entities.api import ExternalValue, Namespace, parse_external_id

EXAMPLE = "stash:1234"


@dataclass(frozen=True)
class ExternalIdFilter:
    #: as typed: what the input and the page's links carry
    text: str = ""
    #: (namespace, value) for the store; None: no filter, or a malformed one
    pair: tuple[str, str] | None = None
    #: why the text is not an external id
    error: str | None = None


def read_external_id(text: str) -> ExternalIdFilter:
    """The filter for what was typed; blank is no filter."""
    text = text.strip()
    if not text:
        return ExternalIdFilter()
    try:
        pair = parse_external_id(text)
    except ValidationFailed:
        return ExternalIdFilter(text, error=f"Write the external id as namespace:id, such as "
                                            f"{EXAMPLE}.")
    assert pair is not None  # only for no text at all
    namespace, value = pair
    try:
        msgspec.convert(namespace, Namespace)
    except msgspec.ValidationError:
        return ExternalIdFilter(text, error=(
            f"“{namespace}” is not an external-id namespace: it is up to 64 lowercase "
            f"letters, digits, _ . or -, such as stash in {EXAMPLE}."))
    try:
        msgspec.convert(value, ExternalValue)
    except msgspec.ValidationError:
        return ExternalIdFilter(text, error="The id after the colon is at most 500 "
                                            "characters.")
    return ExternalIdFilter(text, pair)
