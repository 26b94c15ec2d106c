"""Seeding: rows per second and the share of inserts the database refuses, schema by schema.

    .venv/bin/python -m benchmarks.seeding [--examples 20] [--only bundled]

A refused insert is data the walk never tests, so the share of refusals is the figure to keep
low (under 10 %); rows per second is what a walk's seed steps cost. Each schema is taken at the
state after each of its revisions (the walk seeds at all of them): the bundled history, and
every history of the mutant corpus (``tests/mutants.py``). At each state, ``--examples``
Hypothesis examples call :func:`harness.seeding.seed_rows` as the machine does (ten rows, three
attempts each), each inside a transaction rolled back afterwards, so every example starts from
the state's empty tables. The seed is fixed: the same figures on every run, load aside.
"""

from __future__ import annotations

import argparse
import collections
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from harness.references import Unreachable
from harness.seeding import read_catalog, seed_rows
from harness.server import Server, open_server
from harness.session import open_session
from harness.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mutants import CORRECT, MUTANTS, with_role  # noqa: E402
from projects import make_project  # noqa: E402

SEED = 20261204


def schemas(work: Path) -> dict[str, Path]:
    """Every schema to seed, by name: its alembic.ini."""
    role = f"harness_bench_{secrets.token_hex(3)}"
    found = {"bundled": ROOT / "alembic.ini"}
    for history in [*MUTANTS, *CORRECT]:
        found[history.id] = make_project(work / history.id, with_role(history.revisions, role),
                                         env=getattr(history, "env", "cookbook"))
    return found


def seed_schema(server: Server, ini: Path, examples: int) -> dict[str, Any]:
    """Rows, refusals and seconds of seeding at every revision's state of one history."""
    totals: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    with open_session(load_settings(ini), server) as session:
        graph = session.project.graph
        for revision in graph.revisions:
            try:
                template = session.references.template(graph.state_at(revision))
            except Unreachable:
                totals["unreachable states"] += 1
                continue
            with server.scratch(template=template) as database, \
                    psycopg.connect(database.dsn, autocommit=True) as conn:
                catalog = read_catalog(conn, exclude=(session.project.version_table,))
                _examples(conn, catalog, examples, totals, reasons)
    attempts = totals["rows"] + totals["refused"]
    return {
        "rows": totals["rows"], "attempts": attempts, "refused": totals["refused"],
        "refused_share": totals["refused"] / attempts if attempts else 0.0,
        "skipped": totals["skipped"], "seconds": totals["seconds"] / 1e6,
        "examples": totals["examples"],
        "rows_per_s": totals["rows"] / (totals["seconds"] / 1e6) if totals["seconds"] else 0.0,
        "unreachable_states": totals["unreachable states"],
        "reasons": dict(reasons.most_common(8)),
    }


def _examples(conn: psycopg.Connection, catalog: Any, examples: int,
              totals: collections.Counter[str], reasons: collections.Counter[str]) -> None:
    @seed(SEED)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def example(data: st.DataObject) -> None:
        with conn.transaction(force_rollback=True):
            result = seed_rows(conn, data.draw, catalog)
        totals["examples"] += 1
        totals["rows"] += result.rows
        totals["refused"] += result.rejected
        totals["skipped"] += result.skipped
        totals["seconds"] += round(result.seconds * 1e6)
        reasons.update({why: n for why, n in result.reasons.items() if "spent" not in why})

    example()


def bench_seeding(server: Server, work: Path, examples: int, only: list[str] | None = None) -> dict[str, Any]:
    """Figures per schema and for the mutant corpus as a whole."""
    per_schema = {}
    for name, ini in schemas(work).items():
        if only and name not in only:
            continue
        try:
            per_schema[name] = seed_schema(server, ini, examples)
        except Exception as exc:  # noqa: BLE001 - a schema the harness cannot build is reported
            per_schema[name] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        print(f"  {line(name, per_schema[name])}", flush=True)
    corpus = [f for n, f in per_schema.items() if n != "bundled" and "error" not in f]
    if corpus:
        rows, refused = sum(f["rows"] for f in corpus), sum(f["refused"] for f in corpus)
        seconds = sum(f["seconds"] for f in corpus)
        per_schema["mutant corpus"] = {
            "rows": rows, "attempts": rows + refused, "refused": refused,
            "refused_share": refused / (rows + refused) if rows + refused else 0.0,
            "seconds": seconds, "rows_per_s": rows / seconds if seconds else 0.0,
            "worst": sorted(((f["refused_share"], n) for n, f in per_schema.items()
                             if n != "bundled" and "error" not in f), reverse=True)[:5],
        }
    return {"examples_per_state": examples, "seed": SEED, "schemas": per_schema}


def line(name: str, figures: dict[str, Any]) -> str:
    if "error" in figures:
        return f"{name}: FAILED: {figures['error']}"
    return (f"{name}: {figures['rows']} rows, {figures['refused']} of {figures['attempts']} inserts "
            f"refused ({figures['refused_share'] * 100:.1f} %), {figures['rows_per_s']:.0f} rows/s")


def render(results: dict[str, Any]) -> str:
    schemas = results["schemas"]
    lines = [line(name, schemas[name]) for name in ("bundled", "mutant corpus") if name in schemas]
    if "mutant corpus" in schemas:
        lines += [f"  worst: {n} {share * 100:.1f} %" for share, n in schemas["mutant corpus"]["worst"]]
    if "bundled" in schemas:
        lines += [f"  bundled refused: {why} x{n}" for why, n in schemas["bundled"].get("reasons", {}).items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20, help="seed_rows calls per revision state")
    parser.add_argument("--only", nargs="*", help="schema names (bundled, or a mutant's id)")
    args = parser.parse_args()
    started = time.perf_counter()
    with open_server(Settings()) as server, tempfile.TemporaryDirectory(prefix="harness-seed-") as tmp:
        results = bench_seeding(server, Path(tmp), args.examples, args.only)
    print()
    print(render(results))
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
