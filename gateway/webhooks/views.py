"""Deliveries as the HTTP API shows them, and who may see which (issue 13 §6).

An account sees only deliveries to its own targets (its devices' URLs and its own), never
those to the operator's ``WEBHOOK_URL``, whatever device they report on. The admin sees every
delivery, with each URL's credentials and query values replaced by ``***``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gateway.store.outbox import OutboxRow
from gateway.timestamps import iso_ts_or_none
from gateway.webhooks.keys import TARGET_ACCOUNT, TARGET_DEVICE

REDACTED = "***"


def visible_to(row: OutboxRow, account_id: int | None, is_admin: bool) -> bool:
    """Whether this caller may see (and retry) ``row``: the admin always; an account only
    a delivery of its own to one of its own targets."""
    if is_admin:
        return True
    return account_id is not None and row.owner_id == account_id and row.target in (TARGET_DEVICE, TARGET_ACCOUNT)


def redact_url(url: str) -> str:
    """``url`` with its userinfo and every query value (and any fragment) replaced by ``***``:
    ``https://user:pw@host/p?token=abc&x`` → ``https://***@host/p?token=***&x``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED  # not a URL we can take apart: show nothing of it
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if "@" in parts.netloc:
        netloc = f"{REDACTED}@{netloc}"
    query = "&".join(
        f"{item.split('=', 1)[0]}={REDACTED}" if "=" in item else item for item in parts.query.split("&") if item
    )
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def delivery_view(row: OutboxRow, redact: bool = False) -> dict[str, Any]:
    """A delivery as ``GET /webhooks/deliveries`` shows it (``redact``: the admin's view of the URL)."""
    return {
        "id": row.id,
        "event": row.event,
        "token": row.token,
        "url": redact_url(row.url) if redact else row.url,
        "status": row.status,
        "attempts": row.attempts,
        "lastError": row.last_error,
        "nextAttemptAt": iso_ts_or_none(row.next_attempt_at) if row.status == "pending" else None,
        "createdAt": iso_ts_or_none(row.created_at),
        "deliveredAt": iso_ts_or_none(row.delivered_at),
    }
