"""Field types and their rules (spec §7.3): checking a definition, checking a value against
one, and the typed form a value is indexed and filtered by.

Pure functions over plain dicts: no database, so the API, the UI forms, bulk upsert and the
descriptors plugin all judge a value the same way.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from ff_plugin_sdk import SQL_INT_MAX

FIELD_TYPES = ("string", "text", "int", "float", "bool", "date", "datetime", "url", "enum",
               "multi_enum", "json")
#: types whose values are strings: a regex applies, min/max bound the length
TEXT_TYPES = frozenset({"string", "text", "url"})
#: types whose values can be filtered by range
RANGE_TYPES = frozenset({"int", "float", "date", "datetime"})
ENUM_TYPES = frozenset({"enum", "multi_enum"})
MAX_OPTIONS = 1000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:\d{2})$")
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BadValue(ValueError):
    """A value (or a definition's rule) that breaks a rule: ``rule`` names it (``type``,
    ``min``, ``max``, ``regex``, ``options``), the message says how."""

    def __init__(self, message: str, rule: str = "type") -> None:
        super().__init__(message)
        self.rule = rule


# -- definitions ---------------------------------------------------------------------------
def check_definition(defn: dict[str, Any]) -> list[dict[str, str]]:
    """The rules of a definition that make no sense for its type, as 422 details."""
    errors: list[dict[str, str]] = []
    ftype = defn["field_type"]

    def bad(rule: str, message: str) -> None:
        errors.append({"path": f"$.{rule}", "rule": rule, "message": f"{rule}: {message}"})

    if defn.get("regex") is not None:
        if ftype not in TEXT_TYPES:
            bad("regex", f"applies to string, text and url fields, not {ftype}")
        else:
            try:
                re.compile(defn["regex"])
            except re.error as exc:
                bad("regex", f"not a valid regular expression ({exc})")
    options = defn.get("options")
    if ftype in ENUM_TYPES:
        if not options:
            bad("options", f"a {ftype} field needs at least one option")
        elif len(set(options)) != len(options):
            bad("options", "each option may appear once")
    elif options:
        bad("options", f"apply to enum and multi_enum fields, not {ftype}")
    bounds = {}
    for rule in ("min", "max"):
        if defn.get(rule) is None:
            continue
        try:
            bounds[rule] = bound_value(ftype, defn[rule])
        except BadValue as exc:
            bad(rule, str(exc))
    if len(bounds) == 2 and bounds["min"] > bounds["max"]:
        bad("min", f"{defn['min']!r} is greater than max {defn['max']!r}")
    return errors


def bound_value(ftype: str, raw: Any) -> Any:
    """A min/max rule in comparable form: a length, a count, a number or a date."""
    if ftype in TEXT_TYPES or ftype == "multi_enum":
        what = "a number of choices" if ftype == "multi_enum" else "a length"
        if type(raw) is not int or raw < 0:
            raise BadValue(f"for {ftype} fields this is {what}: a whole number >= 0")
        return raw
    if ftype in ("int", "float"):
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise BadValue(f"for {ftype} fields this is a number")
        if ftype == "int" and type(raw) is not int:
            raise BadValue("for an int field this is a whole number")
        return raw
    if ftype in ("date", "datetime"):
        return sort_key(ftype, check_value({"field_type": ftype}, raw))
    raise BadValue(f"a {ftype} field has no min or max")


# -- values --------------------------------------------------------------------------------
def check_value(defn: dict[str, Any], value: Any) -> Any:
    """``value`` in its typed, normalized form under ``defn``; raises BadValue saying which
    rule it breaks.  ``None`` is no value and is checked by the caller (``required``)."""
    ftype = defn["field_type"]
    value = _typed(ftype, value, defn.get("options"))
    low, high = defn.get("min"), defn.get("max")
    if low is None and high is None:
        pass
    elif ftype in TEXT_TYPES or ftype == "multi_enum":
        size, unit = len(value), ("choices" if ftype == "multi_enum" else "characters")
        if low is not None and size < low:
            raise BadValue(f"min: at least {low} {unit} (got {size})", "min")
        if high is not None and size > high:
            raise BadValue(f"max: at most {high} {unit} (got {size})", "max")
    elif ftype in RANGE_TYPES:
        key = sort_key(ftype, value)
        dated = ftype in ("date", "datetime")
        if low is not None and key < bound_value(ftype, low):
            raise BadValue(f"min: must be {low} or later" if dated
                           else f"min: must be at least {low}", "min")
        if high is not None and key > bound_value(ftype, high):
            raise BadValue(f"max: must be {high} or earlier" if dated
                           else f"max: must be at most {high}", "max")
    regex = defn.get("regex")
    if regex is not None and not re.search(regex, value):
        raise BadValue(f"regex: does not match {regex}", "regex")
    return value


def _typed(ftype: str, value: Any, options: list[str] | None) -> Any:
    if ftype in TEXT_TYPES:
        if not isinstance(value, str):
            raise BadValue(f"must be a string, not {_json_type(value)}")
        if ftype == "string" and _LINE_BREAK.search(value):
            raise BadValue("a string field is one line (a text field holds more)")
        if ftype == "url":
            parts = urlsplit(value)
            if not (parts.scheme and parts.netloc) or any(c.isspace() for c in value):
                raise BadValue("must be a URL such as https://example.org/page")
        return value
    if ftype == "int":
        if type(value) is float and value.is_integer():
            value = int(value)
        if type(value) is not int:
            raise BadValue(f"must be a whole number, not {_json_type(value)}")
        if abs(value) > SQL_INT_MAX:
            raise BadValue("is too large")
        return value
    if ftype == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadValue(f"must be a number, not {_json_type(value)}")
        if not math.isfinite(value):
            raise BadValue("must be a finite number")
        return float(value)
    if ftype == "bool":
        if not isinstance(value, bool):
            raise BadValue(f"must be true or false, not {_json_type(value)}")
        return value
    if ftype == "date":
        if not isinstance(value, str) or not _DATE.match(value):
            raise BadValue("must be a date written YYYY-MM-DD")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError as exc:
            raise BadValue(f"is not a calendar date ({exc})") from None
    if ftype == "datetime":
        if not isinstance(value, str) or not _DATETIME.match(value):
            raise BadValue("must be a date and time with its zone, such as "
                           "2024-05-01T14:30:00Z or 2024-05-01T16:30:00+02:00")
        try:
            moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadValue(f"is not a real date and time ({exc})") from None
        return format_datetime(moment)
    if ftype == "enum":
        if not isinstance(value, str) or value not in (options or ()):
            raise BadValue(f"must be one of {_options(options)}", "options")
        return value
    if ftype == "multi_enum":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadValue(f"must be a list of options from {_options(options)}")
        unknown = [v for v in value if v not in (options or ())]
        if unknown:
            raise BadValue(f"{unknown[0]!r} is not one of {_options(options)}", "options")
        return list(dict.fromkeys(value))
    if ftype == "json":
        return value
    raise BadValue(f"unknown field type {ftype}")  # definitions are checked: unreachable


def format_datetime(moment: datetime) -> str:
    """UTC, ``Z``, microseconds only when there are some."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def sort_key(ftype: str, value: Any) -> Any:
    """A normalized value as indexed: numbers, ISO dates, datetimes as epoch seconds
    (their text would not sort: ``...00.5Z`` < ``...00Z``), folded text."""
    if ftype == "datetime":
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment - _EPOCH).total_seconds()
    if ftype == "bool":
        return int(value)
    if ftype in TEXT_TYPES:
        return value.casefold()
    if ftype == "json":
        return msgspec.json.encode(value, order="sorted").decode()
    return value


def index_values(defn: dict[str, Any], value: Any) -> list[Any]:
    """The rows a normalized value gets in the field index (a multi_enum: one per choice)."""
    if defn["field_type"] == "multi_enum":
        return list(value)
    return [sort_key(defn["field_type"], value)]


def filter_value(defn: dict[str, Any], raw: str, *, ranged: bool) -> Any:
    """A query-string filter value in indexed form (``field.born.gte=1990-01-01``)."""
    ftype = defn["field_type"]
    if ranged and ftype not in RANGE_TYPES:
        raise BadValue(f"ranges apply to int, float, date and datetime fields, not {ftype}")
    value: Any = raw
    if ftype == "int" or ftype == "float":
        try:
            value = int(raw) if ftype == "int" else float(raw)
        except ValueError:
            raise BadValue(f"{raw!r} is not a {'whole ' if ftype == 'int' else ''}number") \
                from None
        if ftype == "int" and abs(value) > SQL_INT_MAX:
            raise BadValue("is too large")
        if ftype == "float" and not math.isfinite(value):
            raise BadValue("must be a finite number")
    elif ftype == "bool":
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if raw.strip().lower() not in words:
            raise BadValue("must be true or false")
        value = words[raw.strip().lower()]
    elif ftype == "json":
        try:
            value = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise BadValue("must be JSON") from None
    elif ftype == "multi_enum":
        value = [raw]
    if ftype in ("enum", "multi_enum"):
        value = _typed(ftype, value, defn.get("options"))
        return value[0] if ftype == "multi_enum" else value
    return sort_key(ftype, _typed(ftype, value, defn.get("options")))


def _options(options: list[str] | None) -> str:
    shown = ", ".join(repr(o) for o in (options or [])[:10])
    return shown + (", ..." if options and len(options) > 10 else "")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)
