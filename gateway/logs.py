"""structlog set-up: JSON lines off a TTY, readable console on one.

The request id lands on every line logged while handling that request
(read from the context variable below, set by the gate, so binding it costs a request
nothing); anything bound with ``bind_contextvars`` does too.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

import structlog

request_id_var: ContextVar[str] = ContextVar("request_id", default="")  # set by the gate (gateway.api.gate)


def add_request_id(logger: object, method: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    rid = request_id_var.get()
    if rid:
        event.setdefault("request_id", rid)
    return event


_level = logging.INFO


def enabled(level: int) -> bool:
    """Whether lines at ``level`` are written: lets a hot path skip building a line nobody keeps."""
    return level >= _level


def configure(level: str = "info", fmt: str = "json") -> None:
    global _level
    lvl = getattr(logging, level.upper(), logging.INFO)
    _level = lvl
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=sys.stderr, format="%(message)s", force=True)
