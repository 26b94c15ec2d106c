"""What a schema snapshot costs, by schema size: a script to run by hand, not a timed test.

    python benchmarks/bench_snapshot.py [--tables 10 100 300] [--repeat 15] [--pg-version 15]

Each generated table looks like an application's: an identity key, a foreign key to the previous
table, an enum and a domain column, defaults, a check, a partial and an expression index, a
comment, row-level security with a policy, table and column grants; every fifth table has a
trigger and every tenth a view. Reported: the median and 90th percentile of ``take_snapshot`` on
a fresh connection (what the harness does for each reference state) and on a warm one, the cost of
diffing two such snapshots, and the size of the snapshot's JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import psycopg

from harness.server import open_server
from harness.settings import Settings
from harness.snapshot import diff_snapshots, take_snapshot

PREAMBLE = """
DO $$ BEGIN CREATE ROLE bench_app; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE SCHEMA app;
CREATE TYPE app.status AS ENUM ('new', 'active', 'closed');
CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%');
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
GRANT USAGE ON SCHEMA app TO bench_app;
"""

TABLE = """
CREATE TABLE app.t{i} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id bigint {parent},
    name text NOT NULL DEFAULT '',
    email app.email,
    status app.status NOT NULL DEFAULT 'new',
    amount numeric(12, 2) CHECK (amount >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_t{i}_open ON app.t{i} (parent_id) WHERE status <> 'closed';
CREATE INDEX ix_t{i}_name ON app.t{i} (lower(name));
COMMENT ON TABLE app.t{i} IS 'table {i}';
ALTER TABLE app.t{i} ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_parent ON app.t{i} TO bench_app USING (parent_id IS NOT NULL);
GRANT SELECT, INSERT ON app.t{i} TO bench_app;
GRANT UPDATE (name, status) ON app.t{i} TO bench_app;
"""

TRIGGER = "CREATE TRIGGER touch_t{i} BEFORE UPDATE ON app.t{i} FOR EACH ROW EXECUTE FUNCTION app.touch();"
VIEW = "CREATE VIEW app.v{i} WITH (security_barrier) AS SELECT id, name FROM app.t{i} WHERE status = 'active';"


def schema(tables: int) -> str:
    parts = [PREAMBLE]
    for i in range(tables):
        parts.append(TABLE.format(i=i, parent=f"REFERENCES app.t{i - 1} (id)" if i else ""))
        if i % 5 == 0:
            parts.append(TRIGGER.format(i=i))
        if i % 10 == 0:
            parts.append(VIEW.format(i=i))
    return "\n".join(parts)


def timed(action, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"{statistics.median(ordered):8.1f} {p90:8.1f}"


def cold_snapshot(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        take_snapshot(conn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--pg-version", type=int, default=None)
    args = parser.parse_args()
    with open_server(Settings(pg_version=args.pg_version)) as server:
        print(f"PostgreSQL {server.version}; times in ms (median, p90) over {args.repeat} runs")
        print(f"{'tables':>6} {'objects':>7} {'cold':>17} {'warm':>17} {'diff':>17} {'json KB':>8}")
        for tables in args.tables:
            with server.scratch() as database, psycopg.connect(database.dsn, autocommit=True) as conn:
                conn.execute(schema(tables))
                cold = timed(lambda: cold_snapshot(database.dsn), args.repeat)
                snap = take_snapshot(conn)
                warm = timed(lambda: take_snapshot(conn), args.repeat)
                diff = timed(lambda: diff_snapshots(snap, snap), args.repeat)
                size = len(json.dumps(snap.to_json())) / 1024
                print(f"{tables:>6} {len(snap.objects):>7} {summary(cold)} {summary(warm)} {summary(diff)}"
                      f" {size:>8.0f}")


if __name__ == "__main__":
    main()
