"""Check: a backup taken at head restores to the same schema and the same data.

The seed document's "backup verification", executed: the head state seeded with rows is dumped
with ``pg_dump -Fc`` and restored with ``pg_restore`` into a fresh empty database, both with
the programs of the server's own major version (older ones refuse a newer server). Then the
restored database must have the snapshot of the original (every object, grant, policy and
owner), the same rows in every table, and as many rows in every materialized view.

What breaks restores is real and invisible until one is needed: a CHECK or an index calling a
function that reads another table without a schema (a restore runs with an empty
search_path), a constraint that the data loaded in dump order violates, an object owned by a
role the target lacks. pg_restore's errors are kept as evidence.
"""

from __future__ import annotations

import collections
import dataclasses
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from ..errors import ServerError
from ..invariants.data import RowsSnapshot
from ..invariants.row_reader import capture_rows
from ..references import Unreachable
from ..server.binaries import Binaries, find_binaries
from ..snapshot import Difference, diff_snapshots, format_diff, take_snapshot
from .context import Context
from .model import NOT_APPLICABLE, VERIFIED, VIOLATED, Section

_MATVIEWS = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'm' AND c.relispopulated AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
 ORDER BY 1, 2
"""
ERRORS_SHOWN = 10


@dataclasses.dataclass
class _Copy:
    """What one dump and restore of the seeded head gave."""

    rows: dict[str, int]
    dump: subprocess.CompletedProcess
    restore: subprocess.CompletedProcess | None
    dump_bytes: int
    dump_s: float
    restore_s: float
    objects: int
    schema: list[Difference]
    data: dict[str, str]
    views: dict[str, tuple[int, int | None]]
    """Materialized view -> (rows in the original, rows after the restore)."""

    @property
    def errors(self) -> list[str]:
        output = self.restore.stderr if self.restore is not None else self.dump.stderr
        return [line for line in output.splitlines() if line.strip()]

    @property
    def failed(self) -> bool:
        return self.restore is None or self.restore.returncode != 0


def check(ctx: Context) -> Section:
    key, title = "backup_restore", "Backup and restore"
    try:
        binaries = find_binaries(version=ctx.server.version)
    except ServerError as exc:
        return Section(key, title, NOT_APPLICABLE,
                       f"no pg_dump/pg_restore of PostgreSQL {ctx.server.version} here: {exc}")
    try:
        ctx.seeded(ctx.graph.heads)
    except Unreachable as exc:
        return Section(key, title, NOT_APPLICABLE, f"head cannot be reached: {exc}")
    copy = _dump_and_restore(ctx, binaries)
    total = sum(copy.rows.values())
    stale_views = {name: counts for name, counts in copy.views.items() if counts[0] != counts[1]}
    problems = []
    if copy.dump.returncode != 0:
        problems.append(f"pg_dump fails: {next(iter(copy.errors), copy.dump.returncode)}")
    elif copy.failed:
        problems.append(f"pg_restore reports {len(copy.errors)} error line(s), first: "
                        f"{next(iter(copy.errors), copy.restore.returncode)}")
    if copy.schema:
        problems.append(f"{len(copy.schema)} schema difference(s) after restore")
    if copy.data:
        problems.append("rows differ in " + ", ".join(copy.data))
    if stale_views:
        problems.append("materialized views differ: " + ", ".join(stale_views))
    if problems:
        status, summary = VIOLATED, "; ".join(problems)
    else:
        status, summary = VERIFIED, (
            f"head with {total} rows in {len(copy.rows)} tables dumped ({copy.dump_bytes // 1024} "
            f"KiB, {copy.dump_s:.2f}s) and restored into a fresh database ({copy.restore_s:.2f}s): "
            f"same schema ({copy.objects} objects), same rows, same materialized view contents")
    evidence = {
        "pg_bin_dir": ctx.shown(binaries.bin_dir), "pg_version": binaries.version,
        "rows": copy.rows, "dump_bytes": copy.dump_bytes,
        "dump_s": round(copy.dump_s, 3), "restore_s": round(copy.restore_s, 3),
        "pg_dump_exit": copy.dump.returncode,
        "pg_restore_exit": copy.restore.returncode if copy.restore else None,
        "errors": copy.errors, "schema_differences": [d.to_json() for d in copy.schema],
        "data_differences": copy.data,
        "materialized_view_rows": {name: {"original": n, "restored": m}
                                   for name, (n, m) in copy.views.items()},
    }
    commands = ('pg_dump -Fc -f head.dump "$DATABASE_URL"',
                'createdb restored && pg_restore -d restored head.dump')
    return Section(key, title, status, summary, _body(evidence), evidence, commands)


def _body(evidence: dict) -> str:
    """What was dumped and restored and how it compares, from the evidence alone."""
    rows, views, data = evidence["rows"], evidence["materialized_view_rows"], evidence["data_differences"]
    schema = [Difference.from_json(d) for d in evidence["schema_differences"]]
    restored = evidence["pg_restore_exit"]
    lines = [
        f"- Programs: `{evidence['pg_bin_dir']}` (PostgreSQL {evidence['pg_version']})",
        f"- Seeded head: {sum(rows.values())} rows ({', '.join(f'{t} {n}' for t, n in rows.items())})",
        f"- pg_dump -Fc: exit {evidence['pg_dump_exit']}, {evidence['dump_bytes']} bytes, {evidence['dump_s']:.2f}s",
        f"- pg_restore into a new database: exit "
        f"{restored if restored is not None else 'not run'}, {evidence['restore_s']:.2f}s",
        f"- Schema after restore: {f'{len(schema)} difference(s)' if schema else 'identical'}",
        "- Rows after restore: " + ("; ".join(f"{t}: {d}" for t, d in data.items()) or "identical in every table"),
        "- Materialized views (refreshed before the dump): " + (", ".join(
            f"{name} {n['original']} rows, {n['restored']} after restore" for name, n in views.items()) or "none"),
    ]
    if evidence["errors"]:
        lines += ["", "```", *evidence["errors"][:ERRORS_SHOWN], "```"]
    if schema:
        lines += ["", "```", format_diff(schema), "```"]
    return "\n".join(lines)


def _dump_and_restore(ctx: Context, binaries: Binaries) -> _Copy:
    seeded, filled = ctx.seeded(ctx.graph.heads)
    with ctx.server.scratch(template=seeded.name) as source, tempfile.TemporaryDirectory() as tmp:
        _refresh_materialized_views(source.dsn)
        path = Path(tmp) / "head.dump"
        started = time.perf_counter()
        dump = _run([binaries.program("pg_dump"), "-Fc", "-f", str(path), "-d", source.dsn])
        dump_s = time.perf_counter() - started
        with ctx.server.scratch() as target:
            started = time.perf_counter()
            restore = (_run([binaries.program("pg_restore"), "-d", target.dsn, str(path)])
                       if dump.returncode == 0 else None)
            restore_s = time.perf_counter() - started
            original, restored = _read(ctx, source.dsn), _read(ctx, target.dsn)
        size = path.stat().st_size if path.exists() else 0
    return _Copy(
        rows=filled.rows, dump=dump, restore=restore, dump_bytes=size, dump_s=dump_s,
        restore_s=restore_s, objects=len(original[0].objects),
        schema=diff_snapshots(original[0], restored[0]),
        data=_data_differences(original[1], restored[1]),
        views={name: (n, restored[2].get(name)) for name, n in original[2].items()},
    )


def _refresh_materialized_views(dsn: str) -> None:
    """Bring populated materialized views up to date with the seeded rows.

    pg_dump stores a materialized view's query, not its rows, and pg_restore recomputes it: a
    view left stale by the seeding would come back different for no fault of the backup.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema, name in conn.execute(_MATVIEWS).fetchall():
            conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(schema, name)))


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def _read(ctx: Context, dsn: str):
    """Schema snapshot, every row of every table, rows per materialized view."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        snapshot = take_snapshot(conn, version_table=ctx.project.version_table)
        rows = capture_rows(conn, exclude=())
        views = {f"{s}.{n}": conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(s, n))).fetchone()[0] for s, n in conn.execute(_MATVIEWS)}
    return snapshot, rows, views


def _data_differences(original: RowsSnapshot, restored: RowsSnapshot) -> dict[str, str]:
    """Tables whose rows are not the same multiset after the restore."""
    found = {}
    for name in sorted(original.tables.keys() | restored.tables.keys()):
        before, after = original.tables.get(name), restored.tables.get(name)
        table = ".".join(name)
        if before is None or after is None:
            found[table] = "missing after restore" if after is None else "appeared after restore"
            continue
        old, new = collections.Counter(before.rows), collections.Counter(after.rows)
        if old != new:
            found[table] = (f"{sum((old - new).values())} of {len(before.rows)} rows missing, "
                            f"{sum((new - old).values())} new")
    return found
