"""Contacts as CSV (RFC 4180), safe to open in a spreadsheet, written batch by batch.

A cell that a spreadsheet would read as a formula (starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'`` (OWASP
"CSV injection"); quoting of commas, quotes and newlines is the ``csv``
module's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence

HEADER = ("phone", "name", "source", "first_seen", "last_seen")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CHARS = frozenset(_FORMULA_START)


def neutralise(cell: str | None) -> str:
    if not cell:
        return ""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def render_rows(rows: Iterable[Iterable[str | None]]) -> str:
    """CSV text of ``rows`` (each line ends with CRLF)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerows([neutralise(c) for c in row] for row in rows)
    return buf.getvalue()


def _safe_row(r: Sequence[str | None]) -> tuple[str | None, ...]:
    return (r[0], neutralise(r[1]), r[2], r[3], r[4])


async def contacts_csv(batches: AsyncIterator[list[Sequence[str | None]]]) -> AsyncIterator[bytes]:
    """The header, then one UTF-8 chunk per batch of ``(phone, name, source, first_seen, last_seen)``
    rows: memory stays at one batch."""
    yield render_rows([HEADER]).encode()
    async for batch in batches:
        buf = io.StringIO()
        # Only ``name`` comes from outside (WhatsApp push names): phones are digits, the
        # source is ours and the times are RFC 3339, so neutralising them is a no-op.
        csv.writer(buf).writerows(r if not r[1] or r[1][0] not in _FORMULA_CHARS else _safe_row(r) for r in batch)
        yield buf.getvalue().encode()
