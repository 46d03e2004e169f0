"""CSV export: RFC 4180 quoting and spreadsheet formula neutralisation."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest

from gateway.csv_export import contacts_csv, neutralise, render_rows


@pytest.mark.parametrize(
    ("cell", "out"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+60123", "'+60123"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rCR", "'\rCR"),
        ("Ali", "Ali"),
        ("Ali =1", "Ali =1"),  # only the first character matters
        ("", ""),
        (None, ""),
    ],
)
def test_formula_cells_get_a_leading_quote(cell: str | None, out: str) -> None:
    """A cell starting with = + - @, tab or CR is prefixed with `'`; others are untouched."""
    assert neutralise(cell) == out


def test_quoting_survives_commas_quotes_and_newlines() -> None:
    """Names with commas, quotes and line breaks round-trip through a CSV reader."""
    names = ["Tan, Ah Kow", 'Siti "Boss" Aminah', "Line1\nLine2", "Crlf\r\nname", "🙂 émoji"]
    text = render_rows([("60123456789", n, "message", "t1", "t2") for n in names])
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert [row[1] for row in parsed] == names
    assert '"Siti ""Boss"" Aminah"' in text


async def test_export_starts_with_the_exact_header() -> None:
    """The first line is exactly `phone,name,source,first_seen,last_seen`, then one row per contact."""

    async def batches() -> AsyncIterator[list[tuple[str, str | None, str, str, str]]]:
        yield [("60123456789", "=cmd|' /C calc'!A0", "message", "2026-01-01T00:00:00.000Z", "b")]
        yield [("60198765432", None, "history", "2026-01-02T00:00:00.000Z", "c")]

    body = b"".join([chunk async for chunk in contacts_csv(batches())]).decode()
    assert body.split("\r\n")[0] == "phone,name,source,first_seen,last_seen"
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert rows[1] == ["60123456789", "'=cmd|' /C calc'!A0", "message", "2026-01-01T00:00:00.000Z", "b"]
    assert rows[2] == ["60198765432", "", "history", "2026-01-02T00:00:00.000Z", "c"]
    assert len(rows) == 3
