"""neonize, imported once and contained: every module of this package takes neonize from here.

neonize's import has side effects the gateway cannot leave in place. It calls
``logging.basicConfig`` (the gateway owns logging), and it runs
``os.popen("uname -a").read()`` without closing the pipe: the child is left
unreaped and its pipe leaks later (a ResourceWarning, an error under pytest).
:func:`_quiet_import` undoes the first and closes the second; the names below
are the parts of neonize the driver uses.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator

__all__ = [
    "INT_TO_EVENT",
    "ChatPresence",
    "ChatPresenceMedia",
    "ClientName",
    "ClientType",
    "DeviceProps",
    "NewClient",
    "ParticipantChange",
    "ProxySettings",
    "ReceiptType",
    "func_callback_bytes",
    "func_callback_bytes2",
    "func_string",
    "gocode",
    "log_whatsmeow",
    "nz",
    "wa",
    "wc",
]


def _closing_popen(cmd: str, mode: str = "r", buffering: int = -1) -> io.StringIO:
    with _os_popen(cmd, mode, buffering) as pipe:  # waits for the child and closes the pipe
        return io.StringIO(pipe.read())


_os_popen = os.popen


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    """Contain neonize's import-time side effects (see the module docstring)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    os.popen = _closing_popen  # type: ignore[assignment]
    try:
        yield
    finally:
        os.popen = _os_popen
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


with _quiet_import():
    from neonize._binder import ProxySettings, func_callback_bytes, func_callback_bytes2, func_string, gocode
    from neonize.client import NewClient
    from neonize.events import INT_TO_EVENT
    from neonize.proto import Neonize_pb2 as nz
    from neonize.proto.waCommon import WACommon_pb2 as wc
    from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
    from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
    from neonize.utils.enum import (
        ChatPresence,
        ChatPresenceMedia,
        ClientName,
        ClientType,
        ParticipantChange,
        ReceiptType,
    )
    from neonize.utils.log import log_whatsmeow
