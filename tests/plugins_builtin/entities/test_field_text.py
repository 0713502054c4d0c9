"""The edit form's ``name: value`` text must round-trip every field the API can store."""

import pytest

from plugins_builtin.entities.ui import format_fields, parse_fields

ROUND_TRIPS = [
    {"born": 1815, "place": "London"},
    {"twitter:handle": "@ada", "url": "https://example.org/a:b"},
    {"n": "1815", "flag": "true", "nothing": "null", "empty": ""},
    {" padded ": "x", '"quoted': 1, 'a\\"b:c': [1, 2], "back\\": {"k": "v"}},
    {"multi": "line one\nline two", "lead": "  spaced  "},
]


@pytest.mark.parametrize("fields", ROUND_TRIPS)
def test_saving_the_form_unchanged_keeps_every_field(fields):
    parsed, error = parse_fields(format_fields(fields))
    assert error is None
    assert parsed == fields


def test_a_line_without_a_colon_is_reported_with_its_number():
    _, error = parse_fields("born: 1815\nno colon here")
    assert error == "line 2: write each field as 'name: value'"


def test_an_unterminated_quoted_name_is_read_as_a_plain_name():
    assert parse_fields('"half: 5') == ({'"half': 5}, None)
