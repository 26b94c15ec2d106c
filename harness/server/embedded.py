"""A throwaway PostgreSQL cluster the harness starts, tunes for tests, and removes.

Why this shape:

- ``postgres`` is started directly and polled, not through ``pg_ctl -w``: about 40 ms to the
  first connection against 120 ms.
- The cluster lives on ``/dev/shm`` when it exists: creating a database from a template there
  takes about 10 ms, against 85-300 ms on this kind of machine's disk.
- PostgreSQL refuses to run as root, so as root the programs run as ``nobody``.
- ``initdb`` runs once per installation: its fresh cluster is kept beside the clusters
  (``harness-initdb-<major>-<key>``) and copied for each start, a fraction of what ``initdb``
  costs (about 450 ms; a start with the copy is about 3 times faster). The key covers the programs (path, size, time) and the
  ``initdb`` options, so a changed installation gets a cluster of its own; the copy appears
  under its name by an atomic rename, complete or not at all, so concurrent runs either see a
  whole cluster or make their own.
- Durability is switched off (fsync, synchronous_commit, full_page_writes): a crash loses a
  cluster that would be deleted anyway.
- A run killed with SIGKILL cannot clean up: the server is told to stop when its parent dies
  (``PR_SET_PDEATHSIG``), and each cluster directory records its owner's pid so the next run
  removes what is left (see :mod:`harness.server.janitor`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from ..errors import ServerError
from . import janitor
from .base import Server, libpq_url
from .binaries import Binaries, reachable_by, reachable_copy

CLUSTER_PREFIX = "harness-pg-"
INITDB_CACHE_PREFIX = "harness-initdb-"
_START_TIMEOUT_S = 30.0
_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "max_locks_per_transaction": "256",
    "log_min_messages": "warning",
    "listen_addresses": "127.0.0.1",
    # A run creates and drops hundreds of short-lived databases; the launcher would visit each
    # of them, competing with the migrations for the CPU, and their statistics are never needed.
    "autovacuum": "off",
}


class EmbeddedServer(Server):
    """A private cluster: ``initdb``, ``postgres`` on a free loopback port, removed on close."""

    def __init__(self, binaries: Binaries, *, keep_dir: bool = False, base_dir: str | None = None) -> None:
        super().__init__()
        self.binaries = binaries
        self.version = binaries.version
        self._keep_dir = keep_dir
        parent = base_dir or _default_base_dir()
        janitor.remove_stale_clusters(parent, CLUSTER_PREFIX)
        self.directory = Path(tempfile.mkdtemp(prefix=f"{CLUSTER_PREFIX}{os.getpid()}-", dir=parent))
        (self.directory / janitor.OWNER_FILE).write_text(json.dumps({"pid": os.getpid()}))
        self._user = _unprivileged_user()
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        try:
            self._prepare()
            self._initdb()
            self._start()
        except BaseException:
            self.close()
            raise

    def dsn(self, dbname: str = "postgres") -> str:
        return libpq_url("postgres", "127.0.0.1", self.port, dbname)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            super().close()
        self._stop()
        if not self._keep_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def _prepare(self) -> None:
        if self._user is None:
            return
        uid = self._user.pw_uid
        self.binaries = reachable_copy(self.binaries, uid)
        if not reachable_by(self.directory.parent, uid):
            raise ServerError(
                f"{self.directory.parent} is not reachable by user {self._user.pw_name}, which "
                "runs the server because PostgreSQL refuses root",
                hint="choose a world-searchable directory for the cluster",
            )
        os.chown(self.directory, uid, self._user.pw_gid)

    def _initdb(self) -> None:
        """The cluster's data directory: a copy of the cached one, made first when missing."""
        data = self.directory / "data"
        command = [
            self.binaries.program("initdb"), "-D", str(data),
            "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
        ]
        cache = self.directory.parent / f"{INITDB_CACHE_PREFIX}{self.version}-{self._cache_key(command)}"
        if (cache / "PG_VERSION").is_file():
            self._copy(cache, data)
            return
        result = self._run(command)
        if result.returncode != 0:
            raise ServerError(
                f"initdb failed for PostgreSQL {self.version} in {self.directory}: "
                + _last_line(result.stdout.decode(errors="replace"))
            )
        staging = self.directory / "initdb-cache"
        self._copy(data, staging)
        try:
            staging.rename(cache)
        except OSError:  # another run cached the same cluster meanwhile
            shutil.rmtree(staging, ignore_errors=True)

    def _cache_key(self, command: list[str]) -> str:
        postgres = Path(self.binaries.program("postgres")).resolve().stat()
        key = [str(self.binaries.bin_dir.resolve()), postgres.st_size, postgres.st_mtime_ns,
               command[3:], self._user.pw_uid if self._user else os.getuid()]
        return hashlib.sha1(json.dumps(key).encode()).hexdigest()[:12]

    def _copy(self, source: Path, target: Path) -> None:
        """``cp -a`` as the server's user, so the copy is owned by it with the modes it needs."""
        result = self._run(["cp", "-a", str(source), str(target)])
        if result.returncode != 0:
            raise ServerError(
                f"cannot copy the PostgreSQL {self.version} cluster {source} to {target}: "
                + _last_line(result.stdout.decode(errors="replace"))
            )

    def _start(self) -> None:
        for _attempt in range(3):
            self.port = _free_port()
            options = {**_SETTINGS, "port": str(self.port), "unix_socket_directories": str(self.directory)}
            command = [self.binaries.program("postgres"), "-D", str(self.directory / "data")]
            for key, value in options.items():
                command += ["-c", f"{key}={value}"]
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    preexec_fn=die_with_parent, start_new_session=True, **self._as_user(),
                )
            if self._wait_until_ready():
                return
        raise ServerError(
            f"PostgreSQL {self.version} did not start in {self.directory}: "
            + _last_line(self.log_path.read_text(errors="replace")),
            hint=f"see {self.log_path}",
        )

    def _wait_until_ready(self) -> bool:
        """Poll every 5 ms; False if the server died (say, its port was taken meanwhile)."""
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                psycopg.connect(self.dsn(), connect_timeout=1).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.005)
        self._stop()
        return False

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # SIGINT is PostgreSQL's fast shutdown: clients are disconnected, no waiting for them.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.directory, **self._as_user(),
        )

    def _as_user(self) -> dict[str, object]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as: None unless we are root, then ``nobody``."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        raise ServerError(
            "running as root, and there is no user 'nobody' to run PostgreSQL as "
            "(PostgreSQL refuses to run as root)",
            hint="run the harness as an ordinary user, or give --database-url",
        ) from None


def _default_base_dir() -> str:
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent(signal_number: int = signal.SIGINT) -> None:
    """In a child before exec: have the kernel send it ``signal_number`` when the harness
    process dies (SIGINT: PostgreSQL's fast shutdown)."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal_number))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
