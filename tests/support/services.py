"""PostgreSQL and NATS (with JetStream) for the tests: the machine's own when they answer, else throwaway ones.

This project's machines run PostgreSQL on 127.0.0.1:5432 (trust auth, database ``test``) and NATS with
JetStream on 127.0.0.1:4222 before a session starts. A fresh machine may have neither: then the tests
start their own, from Debian's ``postgresql`` and ``nats-server`` packages (``make test`` installs them),
in a temporary directory on free ports, and stop them at the end — they never skip.

``TEST_DATABASE_URL`` / ``TEST_BUS_URL`` point the tests at other servers.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.net import HOST, free_port
from tests.support.poll import until_sync

SYSTEM_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SYSTEM_NATS = "nats://127.0.0.1:4222"
START_TIMEOUT_S = 30.0


class ServiceMissing(RuntimeError):
    """A server binary is not installed (``make test`` installs it)."""


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until_answers(host: str, port: int, timeout: float = START_TIMEOUT_S) -> None:
    until_sync(lambda: answers(host, port, timeout=0.2), timeout, f"a server on {host}:{port}")


def postgres_bin() -> Path:
    """The newest installed PostgreSQL server's bin directory (Debian's layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise ServiceMissing("PostgreSQL is not installed: `make test` installs it (apt-get install -y postgresql)")
    return Path(found[-1]).parent


def nats_server_bin() -> str:
    path = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
    if not path:
        raise ServiceMissing("nats-server is not installed: `make test` installs it (apt-get install -y nats-server)")
    return path


def _as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


class ThrowawayPostgres:
    """A fresh PostgreSQL cluster on a free port, with a database ``test`` (:attr:`url`); it can be stopped
    and started again on the same port and files (a database restart under a running gateway).

    Its files live in a directory of its own under the system temp dir (removed after): run as root,
    the server runs as ``postgres``, which cannot enter pytest's root-only temp directories.
    """

    def __init__(self) -> None:
        self.bindir = postgres_bin()
        self.workdir = Path(tempfile.mkdtemp(prefix="wa-gateway-pg-"))
        self.data = self.workdir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
        self.port = free_port()
        self.url = f"postgresql://postgres@{HOST}:{self.port}/test"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(_as_postgres_user(list(argv)), capture_output=True, timeout=START_TIMEOUT_S)
        if done.returncode:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {done.stderr.decode(errors='replace')[-2000:]}")

    def create(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.start()
        self._run(str(self.bindir / "createdb"), "-h", HOST, "-p", str(self.port), "-U", "postgres", "test")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses={HOST} -c fsync=off -c full_page_writes=off"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.workdir / "pg.log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        subprocess.run(
            _as_postgres_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )

    def remove(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def throwaway_server() -> Iterator[ThrowawayPostgres]:
    """A :class:`ThrowawayPostgres`, running; stopped and removed afterwards."""
    pg = ThrowawayPostgres()
    try:
        pg.create()
        try:
            yield pg
        finally:
            pg.stop()
    finally:
        pg.remove()


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A fresh PostgreSQL cluster on a free port (see :class:`ThrowawayPostgres`); yields its URL."""
    with throwaway_server() as pg:
        yield pg.url


class ThrowawayNats:
    """A NATS server with JetStream (storage in ``workdir``) on a free port (:attr:`url`); it can be stopped
    and started again on the same port (a bus restart under a running cluster)."""

    def __init__(self, workdir: Path) -> None:
        self.binary = nats_server_bin()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"nats://{HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [self.binary, "-js", "-a", HOST, "-p", str(self.port), "-sd", str(self.workdir / "jetstream")]
        with open(self.workdir / "nats.log", "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until_answers(HOST, self.port)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def throwaway_nats_server(workdir: Path) -> Iterator[ThrowawayNats]:
    """A running :class:`ThrowawayNats`, stopped afterwards."""
    nats = ThrowawayNats(workdir)
    nats.start()
    try:
        yield nats
    finally:
        nats.stop()


@contextlib.contextmanager
def throwaway_nats(workdir: Path) -> Iterator[str]:
    """A NATS server with JetStream (storage in ``workdir``) on a free port; yields its URL."""
    with throwaway_nats_server(workdir) as nats:
        yield nats.url


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """``TEST_DATABASE_URL``, else the machine's PostgreSQL if it answers, else a throwaway one."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
    elif answers(HOST, 5432):
        yield SYSTEM_POSTGRES
    else:
        with throwaway_postgres() as url:
            yield url


@contextlib.contextmanager
def nats(workdir: Path) -> Iterator[str]:
    """``TEST_BUS_URL``, else the machine's NATS if it answers, else a throwaway one."""
    if url := os.environ.get("TEST_BUS_URL"):
        yield url
    elif answers(HOST, 4222):
        yield SYSTEM_NATS
    else:
        with throwaway_nats(workdir) as url:
            yield url
