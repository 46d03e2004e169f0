"""Who a campaign sends to: an inline list, a CSV upload, or the device's captured contacts.

Every recipient given becomes a row, in the order given: a number that fails
the phone rules (§3) is ``skipped`` with reason ``invalid_phone``, a repeat of
an earlier number ``skipped`` with reason ``duplicate`` — counted, never sent.
CSV files need a header row with a ``phone`` column (any case); every other
column is a template variable (``name`` also fills ``{{name}}``).

A CSV is read as a stream, a chunk of rows at a time, and each chunk is
stored before the next is read (:meth:`Recipients.chunks`): memory grows with
the distinct numbers (a set of integers), not with the file — a 100,000-row
campaign is created in a few MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.api.errors import ApiError, invalid
from gateway.phones.rules import InvalidPhone, normalize_bulk
from gateway.store.campaigns import NewRecipient

MAX_RECIPIENTS = 1_000_000
MAX_CELL = 4096  # characters of one CSV cell or var value
MAX_COLUMNS = 64
CHUNK = 10_000  # recipients read, then stored, at a time
csv.field_size_limit(1 << 20)  # a cell this big is refused below, not by the csv module's 128 KiB limit


@dataclass(slots=True)
class Recipients:
    """What a source gives: its rows (all at once, or read on demand by :meth:`chunks`), the variables they
    offer, and the counts so far (final once :meth:`chunks` is exhausted)."""

    rows: list[NewRecipient] = field(default_factory=list)  # read, not yet taken by chunks()
    columns: set[str] = field(default_factory=set)
    total: int = 0
    pending: int = 0
    skipped: int = 0
    _seen: set[int] = field(default_factory=set)  # numbers as integers: a third of their text's size
    _more: Callable[[int], bool] | None = None  # reads up to n more rows; False once the source is done
    _close: Callable[[], None] | None = None
    _reading: asyncio.Future[bool] | None = None  # the read under way in a thread

    def add(self, raw: str, name: str | None, vars_: dict[str, str] | None, cc: str) -> None:
        if self.total >= MAX_RECIPIENTS:
            raise invalid(f"a campaign holds at most {MAX_RECIPIENTS:,} recipients")
        self.total += 1
        seq = self.total
        blob = orjson.dumps(vars_).decode() if vars_ else None
        try:
            phone = normalize_bulk(raw, cc)
        except InvalidPhone:
            self.rows.append((seq, (raw or "")[:64], name, blob, "skipped", "invalid_phone"))
            self.skipped += 1
            return
        key = int(phone)
        if key in self._seen:
            self.rows.append((seq, phone, name, blob, "skipped", "duplicate"))
            self.skipped += 1
            return
        self._seen.add(key)
        self.rows.append((seq, phone, name, blob, "pending", None))
        self.pending += 1

    async def chunks(self, size: int = CHUNK) -> AsyncIterator[list[NewRecipient]]:
        """The rows, ``size`` at a time, in order. A streamed source reads the next chunk (in a thread)
        while the caller stores the one it was given, and never more than that one ahead."""
        if self._more is not None and len(self.rows) < size:
            self._reading = asyncio.ensure_future(asyncio.to_thread(self._more, size - len(self.rows)))
        while True:
            if self._reading is not None:
                reading, self._reading = self._reading, None
                if not await reading:
                    self._more = None
            if not self.rows:
                return
            chunk, self.rows = self.rows[:size], self.rows[size:]
            if self._more is not None and len(self.rows) < size:
                self._reading = asyncio.ensure_future(asyncio.to_thread(self._more, size - len(self.rows)))
            yield chunk

    async def aclose(self) -> None:
        """Let go of the source (the CSV file), after a read under way has ended; safe to call twice."""
        reading, self._reading, self._more = self._reading, None, None
        if reading is not None:
            with contextlib.suppress(Exception):
                await reading
        close, self._close = self._close, None
        if close is not None:
            close()


def _cell(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise invalid(f"{where} must be a string")
    text = str(value)
    if len(text) > MAX_CELL:
        raise invalid(f"{where} is longer than {MAX_CELL} characters")
    return text


def from_inline(items: list[dict[str, Any]], cc: str) -> Recipients:
    """``recipients: [{phone, name?, vars?}]``."""
    out = Recipients()
    for i, item in enumerate(items):
        where = f"'recipients[{i}]'"
        phone = item.get("phone")
        if not isinstance(phone, str | int) or isinstance(phone, bool):
            raise ApiError("INVALID_PHONE", f"{where}.phone must be a phone number")
        name = _cell(item.get("name"), f"{where}.name")
        raw_vars = item.get("vars")
        vars_: dict[str, str] | None = None
        if raw_vars is not None:
            if not isinstance(raw_vars, dict) or len(raw_vars) > MAX_COLUMNS:
                raise invalid(f"{where}.vars must be an object of at most {MAX_COLUMNS} strings")
            vars_ = {str(k)[:64]: _cell(v, f"{where}.vars.{k}") or "" for k, v in raw_vars.items()}
            out.columns.update(vars_)
        out.add(str(phone), name, vars_, cc)
    return out


def from_contacts(contacts: Iterable[tuple[str, str | None]], cc: str) -> Recipients:
    out = Recipients()
    for phone, name in contacts:
        out.add(phone, name, None, cc)
    return out


def from_csv(path: Path, cc: str) -> Recipients:
    """A CSV file (UTF-8, a BOM allowed; comma, semicolon or tab separated) with a ``phone`` column.

    Reads the header only (a missing ``phone`` column is refused here); the rows are read by
    :meth:`Recipients.chunks`. The caller closes the result."""
    raw = path.open("rb")
    try:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        out: Recipients = _guarded(lambda: _open_csv(text, cc))
        out._close = text.close
        return out
    except BaseException:
        raw.close()
        raise


def _guarded(read: Callable[[], Any]) -> Any:
    """``read()``, with what a broken file raises turned into INVALID_REQUEST."""
    try:
        return read()
    except UnicodeDecodeError as exc:
        raise invalid("the recipients CSV is not UTF-8 text") from exc
    except csv.Error as exc:
        raise invalid(f"the recipients CSV cannot be read: {exc}") from exc


def _open_csv(text: IO[str], cc: str) -> Recipients:
    sample = text.read(8192)
    text.seek(0)
    dialect: Any = csv.excel
    if sample:
        try:
            dialect = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
    reader: Iterator[list[str]] = csv.reader(text, dialect)
    header = next(reader, None)
    if not header:
        raise invalid("the recipients CSV is empty: it needs a header row with a 'phone' column")
    names = [h.strip() for h in header]
    if len(names) > MAX_COLUMNS:
        raise invalid(f"the recipients CSV has more than {MAX_COLUMNS} columns")
    lower = [n.lower() for n in names]
    if "phone" not in lower:
        raise invalid(f"the recipients CSV has no 'phone' column (its header: {', '.join(names)[:200]})")
    phone_at = lower.index("phone")
    name_at = lower.index("name") if "name" in lower else None
    out = Recipients()
    out.columns.update(n for i, n in enumerate(names) if i != phone_at and n)
    extra = [(i, n) for i, n in enumerate(names) if i not in (phone_at, name_at) and n]
    numbered = enumerate(reader, start=2)

    def more(n: int) -> bool:
        return bool(_guarded(lambda: read(n)))

    def read(n: int) -> bool:
        for line, row in numbered:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if any(len(c) > MAX_CELL for c in row):
                raise invalid(f"the recipients CSV has a cell longer than {MAX_CELL} characters (line {line})")
            phone = row[phone_at].strip() if phone_at < len(row) else ""
            name = row[name_at].strip() or None if name_at is not None and name_at < len(row) else None
            vars_ = {n: row[i] for i, n in extra if i < len(row)} or None
            out.add(phone, name, vars_, cc)
            n -= 1
            if n <= 0:
                return True
        return False

    out._more = more
    return out
