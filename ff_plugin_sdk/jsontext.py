"""JSON text that came with a request (a form field, a cursor): parsed, or :class:`NotJson`.

A parser follows nesting by recursion, so ``[[[[...`` a hundred thousand deep raises
``RecursionError``; text from a request must never reach a 500 that way.
"""

from __future__ import annotations

from typing import Any

import msgspec


class NotJson(ValueError):
    """The text is not JSON this server can read (malformed, not UTF-8, nested too deep)."""


def parse_json(text: str | bytes) -> Any:
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise NotJson(str(exc)) from exc
    except RecursionError:
        raise NotJson("the JSON is nested too deeply") from None
