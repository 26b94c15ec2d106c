"""Removing what a killed run left behind, and nothing else.

A run stopped by SIGKILL (or a crashed machine) cannot drop its scratch databases or stop its
server. Each leftover names its owner -- a cluster directory holds ``owner.json``, a scratch
database carries its owner in its comment -- and is removed only when that owner is on this host
and no longer alive.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Server

OWNER_FILE = "owner.json"


def remove_stale_clusters(parent: str, prefix: str) -> list[Path]:
    """Stop and delete embedded clusters under ``parent`` whose owning process is gone."""
    removed = []
    for directory in sorted(Path(parent).glob(f"{prefix}*")):
        owner = _read_owner(directory / OWNER_FILE)
        if owner is None or _alive(owner.get("pid")):
            continue
        _stop_postmaster(directory / "data" / "postmaster.pid")
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


def drop_stale_databases(server: Server) -> list[str]:
    """Drop scratch databases on ``server`` made by dead processes of this host."""
    from .base import SCRATCH_PREFIX

    rows = server.admin.execute(
        "SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d "
        "WHERE d.datname LIKE %s",
        (SCRATCH_PREFIX.replace("_", r"\_") + "%",),
    ).fetchall()
    dropped = []
    for name, comment in rows:
        owner = _parse_comment(comment)
        if owner and owner.get("host") == socket.gethostname() and not _alive(owner.get("pid")):
            server.drop_database(name)
            dropped.append(name)
    return dropped


def _parse_comment(comment: str | None) -> dict | None:
    marker = "harness scratch "
    if not comment or not comment.startswith(marker):
        return None
    with contextlib.suppress(ValueError):
        return json.loads(comment[len(marker):])
    return None


def _read_owner(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def _stop_postmaster(pid_file: Path) -> None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pid_file.read_text().splitlines()[0])
        # SIGQUIT: immediate shutdown; the cluster is about to be deleted anyway.
        os.kill(pid, signal.SIGQUIT)
        for _ in range(200):
            if not _alive(pid):
                return
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
