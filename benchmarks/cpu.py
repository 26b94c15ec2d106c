"""CPU seconds of a benchmarked action: this process's and the embedded server's, whole.

Wall-clock seconds on a shared machine measure the load as much as the work: the same sweep took
twice as long from one minute to the next while other jobs ran. CPU time counts only the work
(this process, and every server process: the postmaster with the backends it reaped, and those
still running), so the ratio of two actions' CPU times holds under load where their wall-clock
ratio wanders. Linux only (``/proc``), embedded server only; elsewhere None.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, TypeVar

from harness.server import Server

T = TypeVar("T")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(server: Server, action: Callable[[], T]) -> tuple[T, float | None]:
    """``action()``'s result and the CPU seconds it cost, client and server (None if unknown)."""
    postmaster = _postmaster(server)
    before = _server_cpu(postmaster) if postmaster else None
    started, children = time.process_time(), _reaped_children()
    result = action()
    client = time.process_time() - started + _reaped_children() - children
    after = _server_cpu(postmaster) if postmaster else None
    return result, None if before is None or after is None else client + after - before


def _reaped_children() -> float:
    """CPU of the child processes waited for (a sweep's workers, with their own servers)."""
    times = os.times()
    return times.children_user + times.children_system


def _postmaster(server: Server) -> int | None:
    process = getattr(server, "_process", None)
    return process.pid if process is not None and Path(f"/proc/{process.pid}/stat").exists() else None


def _server_cpu(postmaster: int) -> float | None:
    """The postmaster's CPU with its reaped children's, plus its live children's."""
    try:
        total = _ticks(postmaster, children=True)
    except OSError:
        return None
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                continue
    return total / _TICK


def _ticks(pid: int, *, children: bool) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks + (int(fields[13]) + int(fields[14]) if children else 0)
