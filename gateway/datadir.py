"""The data directory: private to the gateway, and tied to the driver that made it.

Session files hold WhatsApp's keys for each linked number, so the directory is
``0700`` and every file in it ``0600``. The process's umask is tightened before
anything is created, which also covers the files neonize's Go core and SQLite
(``-wal``/``-shm``) create behind our back; files from an older installation are
tightened at start.

The driver that first used a directory is recorded in ``$DATA_DIR/driver``:
sandbox devices restored by the real driver (or the reverse) look like phones
that need pairing again, which confused new users. Starting the other driver on
it is refused with one line unless ``--force`` (which records the new driver).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DRIVER_FILE = "driver"
PRIVATE_UMASK = 0o077


class DataDirError(RuntimeError):
    """The data directory cannot be used as asked; the message is one line for the operator."""


def prepare(data_dir: Path, driver: str, *, force: bool = False) -> None:
    """Create or tighten ``data_dir`` and check (or record) which driver it belongs to."""
    os.umask(PRIVATE_UMASK)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        for entry in data_dir.iterdir():
            if entry.is_file() and not entry.is_symlink():
                mode = stat.S_IMODE(entry.stat().st_mode)
                if mode & 0o077:
                    os.chmod(entry, mode & 0o700)
    except OSError as exc:
        raise DataDirError(f"DATA_DIR {data_dir}: {exc.strerror or exc}") from exc
    recorded = recorded_driver(data_dir)
    if recorded is not None and recorded != driver and not force:
        raise DataDirError(
            f"DATA_DIR {data_dir} belongs to the {recorded} driver, not WA_DRIVER={driver}: its devices would be "
            f"restored by the wrong driver. Use another DATA_DIR, or start with --force to adopt it for {driver}."
        )
    if recorded != driver:
        (data_dir / DRIVER_FILE).write_text(driver + "\n")


def recorded_driver(data_dir: Path) -> str | None:
    """The driver recorded for ``data_dir``; None for a new directory, or one from before the record existed
    (then the first driver to start on it is recorded)."""
    try:
        return (data_dir / DRIVER_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None
