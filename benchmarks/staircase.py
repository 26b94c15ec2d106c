"""The 120-revision history with a dozen defects: one sweep against a pg_dump staircase.

The staircase is what a careful person scripts by hand: for each revision, ``alembic upgrade``,
``pg_dump --schema-only``, ``alembic downgrade -1``, ``pg_dump`` again, compare, upgrade again.
It sees what pg_dump prints (no column grants of default privileges, no data, no isolation) and
stops at the first downgrade that fails. Run: ``python -m benchmarks.staircase``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from harness import commands
from harness.server import open_server
from harness.server.binaries import find_binaries
from harness.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from projects import Rev, make_project  # noqa: E402
from test_long_history import DEFECTS, LENGTH, _history, _rid  # noqa: E402


def staircase(ini: Path, server, dump: str) -> tuple[float, list[str], str | None]:
    """Seconds, revisions whose round trip changed the dump, and where it stopped (if it did)."""
    database = server.create_database()
    engine = sa.create_engine(database.sqlalchemy_url("psycopg"), poolclass=sa.pool.NullPool)
    differing, stopped = [], None
    started = time.perf_counter()
    with engine.connect() as connection:
        config = Config(str(ini))
        config.attributes["connection"] = connection

        def schema() -> str:
            text = subprocess.run([dump, "--schema-only", database.dsn], capture_output=True,
                                  text=True, check=True).stdout
            return re.sub(r"^\\(un)?restrict .*$", "", text, flags=re.M)

        previous = schema()
        for i in range(1, LENGTH + 1):
            try:
                command.upgrade(config, _rid(i))
                command.downgrade(config, "-1")
                connection.commit()
                if schema() != previous:
                    differing.append(_rid(i))
                command.upgrade(config, _rid(i))
                connection.commit()
            except Exception as exc:  # what the staircase does: stop at the first failing step
                stopped = f"{_rid(i)} ({type(exc).__name__})"
                break
            previous = schema()
    seconds = time.perf_counter() - started
    engine.dispose()
    server.drop_database(database.name)
    return seconds, differing, stopped


def main() -> None:
    with tempfile.TemporaryDirectory() as root, open_server(Settings()) as server:
        ini = make_project(root, _history())
        dump = find_binaries(server.version).program("pg_dump")
        started = time.perf_counter()
        result = commands.sweep(load_settings(ini), server=server)
        sweep_s = time.perf_counter() - started
        stair_s, differing, stopped = staircase(ini, server, dump)
        clean = make_project(Path(root) / "clean", [Rev(_rid(i), down=_rid(i - 1) if i > 1 else None)
                                                    for i in range(1, LENGTH + 1)])
        clean_s, _, _ = staircase(clean, server, dump)
        started = time.perf_counter()
        commands.sweep(load_settings(clean), server=server)
        clean_sweep_s = time.perf_counter() - started
    print(f"{LENGTH} revisions, {len(DEFECTS)} defects, PostgreSQL {server.version}")
    print(f"harness sweep: {sweep_s:.1f} s, {len(result.violations)} findings "
          f"({', '.join(sorted({v.property for v in result.violations}))})")
    print(f"pg_dump staircase: {stair_s:.1f} s, {len(differing)} dumps differ "
          f"({', '.join(differing)}), stopped at {stopped or 'nothing'}")
    print(f"the same length without defects: staircase {clean_s:.1f} s, sweep {clean_sweep_s:.1f} s "
          f"({clean_sweep_s / clean_s:.1f}x)")


if __name__ == "__main__":
    main()
