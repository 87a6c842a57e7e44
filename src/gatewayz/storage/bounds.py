"""Values bounded to the columns that store them.

Log rows carry what came from outside — a caller's model name, a provider's token counts — and
one value the database refuses would cost the row (and, before the writer isolated bad rows,
every row after it). So where such rows are built for the database, each value is made one its
column accepts: a string is cut to the column's length and cleaned of what PostgreSQL refuses in
text (NUL, lone surrogates: both valid in JSON), an integer is clamped into the column's range.
Lengths and ranges come from the Table definition, so they follow the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Integer, SmallInteger, String, Table

# Signed range of each integer column type, the same on both backends (SQLite would store more
# in an INTEGER, PostgreSQL would not).
_INT_BITS: tuple[tuple[type[Integer], int], ...] = ((BigInteger, 64), (SmallInteger, 16))
_DEFAULT_INT_BITS = 32
_NUL, _REPLACEMENT = "\x00", "\ufffd"


def clean_text(value: str, length: int | None) -> str:
    """`value` cut to `length` characters (None: any length), NUL replaced by U+FFFD and
    anything UTF-8 cannot encode (lone surrogates) by `?`. Each replacement is one character
    for one, so the length bound holds."""
    if length is not None:
        value = value[:length]
    if _NUL in value:
        value = value.replace(_NUL, _REPLACEMENT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _int_range(column_type: Integer) -> tuple[int, int]:
    bits = next((b for cls, b in _INT_BITS if isinstance(column_type, cls)), _DEFAULT_INT_BITS)
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


class RowBounds:
    """Bounds the values of one table's rows. Values of other types (None, floats, booleans,
    JSON) pass unchanged: a wrong type is a bug the writer isolates, not input to repair."""

    def __init__(self, table: Table) -> None:
        self._lengths: list[tuple[str, int | None]] = []
        self._ranges: list[tuple[str, int, int]] = []
        for column in table.c:
            if isinstance(column.type, String):
                self._lengths.append((column.name, column.type.length))
            elif isinstance(column.type, Integer):
                self._ranges.append((column.name, *_int_range(column.type)))

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `row` with every string and integer bounded to its column. Runs for every
        logged request, so the common case — short ASCII text, counts in range — only looks."""
        out = dict(row)
        for name, length in self._lengths:
            value = out.get(name)
            if type(value) is str and (
                (length is not None and len(value) > length) or not value.isascii() or _NUL in value
            ):
                out[name] = clean_text(value, length)
        for name, low, high in self._ranges:
            value = out.get(name)
            if type(value) is int and not low <= value <= high:
                out[name] = min(max(value, low), high)
        return out
