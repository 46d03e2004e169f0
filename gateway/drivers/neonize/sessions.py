"""whatsmeow's sessions in PostgreSQL: the database string goneonize gets, and its schema upgrade.

goneonize picks whatsmeow's store by the database string alone: one that
starts with ``postgres`` opens the sqlstore on PostgreSQL (lib/pq, inside the
wheel), anything else is a SQLite file path — so a keyword-style string
(``host=… dbname=…``) would silently become a file named after it.
:func:`session_dsn` accepts only a URL and adds what lib/pq needs:

- ``sslmode``: lib/pq defaults to ``require``, which a plain server refuses
  ("SSL is not enabled on the server"); without one in the URL this adds
  ``prefer`` — TLS when the server offers it, plain otherwise — which is
  asyncpg's default too, so the store and whatsmeow connect alike. A URL that
  names its ``sslmode`` (``disable``, ``verify-full``, …) keeps it.
- ``idle_session_timeout=300000`` (PostgreSQL ≥ 14): every ``Neonize()`` call
  opens a Go ``sql.DB`` that goneonize never closes; the server closes the
  ones left idle for 5 minutes, and a live client's pool reconnects by itself.
- ``application_name`` (when given, and the URL names none): whatsmeow's
  connections named after the node, so ``pg_stat_activity`` shows which node
  holds how many (``SELECT application_name, count(*) … GROUP BY 1``).

:func:`upgrade_schema` runs whatsmeow's schema upgrade without connecting
anything (goneonize's ``GetAllDevices`` opens the store, which upgrades it, and
lists the devices). whatsmeow's upgrade takes no lock of its own, so the
caller holds one (the gateway: a PostgreSQL advisory lock, before any device
connects).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.drivers.neonize.patches import func_callback_bytes2, gocode, log_whatsmeow

__all__ = ["IDLE_SESSION_TIMEOUT_MS", "is_postgres", "session_dsn", "upgrade_schema"]

IDLE_SESSION_TIMEOUT_MS = 300_000
_SCHEMES = ("postgresql", "postgres")


def is_postgres(db: str) -> bool:
    """Whether goneonize takes ``db`` for PostgreSQL (else it is a SQLite file path)."""
    return db.startswith("postgres")


def session_dsn(url: str, server_version_num: int | None = None, application_name: str | None = None) -> str:
    """The database string for goneonize: ``url`` checked, ``sslmode`` and ``idle_session_timeout`` added.

    ``server_version_num`` (``SHOW server_version_num``) leaves out the timeout
    below PostgreSQL 14, which refuses a parameter it does not know; None adds it.
    Raises ValueError (naming no secret) for anything but a ``postgresql://`` URL.
    """
    try:
        parts = urlsplit(url.strip())
        ok = parts.scheme in _SCHEMES and bool(parts.hostname or parts.path.strip("/"))
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            "whatsmeow's database must be a URL like postgresql://user:password@host:5432/database "
            "(a keyword string such as 'host=… dbname=…' would be taken for a SQLite file name)"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {name for name, _ in query}
    if "sslmode" not in names:
        query.append(("sslmode", "prefer"))
    if "idle_session_timeout" not in names and (server_version_num is None or server_version_num >= 140000):
        query.append(("idle_session_timeout", str(IDLE_SESSION_TIMEOUT_MS)))
    if application_name and "application_name" not in names:
        # PostgreSQL keeps 63 bytes of it, printable ASCII only
        name = "".join(c if " " <= c <= "~" else "?" for c in application_name)[:63]
        query.append(("application_name", name))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def upgrade_schema(dsn: str) -> int:
    """Create or upgrade whatsmeow's tables in ``dsn`` (blocking; hold a lock around it): the shared
    PostgreSQL store, or a session file's path (import-sqlite brings a copy of each to the same version).
    Returns the number of devices stored. Raises RuntimeError with whatsmeow's error."""
    log_cb = func_callback_bytes2(log_whatsmeow)
    answer = bytes(gocode.GetAllDevices(dsn.encode(), log_cb)).decode(errors="replace")
    if answer.startswith("error: "):
        raise RuntimeError(f"whatsmeow's schema upgrade failed: {answer.removeprefix('error: ')}")
    return len(answer.split("|\u0001|")) if answer else 0
