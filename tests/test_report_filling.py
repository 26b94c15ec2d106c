"""The report's seeded databases: every table filled to the size asked, the same way every time.

The figures of the report (times, locks under load, data kept, backups) mean something only if
the tables hold rows; a table the filler cannot satisfy must show up as such, not as silence.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from harness.seeding.filling import fill
from harness.session import open_session
from harness.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent

SHAPES = """
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE DOMAIN code AS varchar(3) CHECK (VALUE ~ '^[A-Z]{3}$');
CREATE TABLE serial_only (id serial PRIMARY KEY);
CREATE TABLE parents (a int, b text, PRIMARY KEY (a, b));
CREATE TABLE shapes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    m mood NOT NULL,
    c code NOT NULL,
    tags text[] NOT NULL,
    price numeric(5, 2) NOT NULL CHECK (price > 0 AND price < 100),
    share numeric(3, 2) NOT NULL CHECK (share > 0 AND share <= 1),
    starts timestamptz NOT NULL,
    ends timestamptz NOT NULL,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    a int NOT NULL, b text NOT NULL,
    parent_id bigint REFERENCES shapes,
    FOREIGN KEY (a, b) REFERENCES parents,
    CHECK (ends > starts)
);
"""


def test_every_shape_of_table_gets_its_rows(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(SHAPES)
    filled = fill(pg_conn, 30)
    assert filled.rows == {"public.parents": 30, "public.serial_only": 30, "public.shapes": 30}
    assert filled.unseedable == {}
    # Filling again only tops up: nothing is added to full tables.
    assert fill(pg_conn, 30).added == {}


def test_the_bundled_schema_is_filled_the_same_way_twice(pg_server) -> None:
    with open_session(load_settings(ROOT / "alembic.ini"), server=pg_server) as session:
        template = session.references.template(session.project.graph.heads)
        results = []
        for _ in range(2):
            with pg_server.scratch(template=template) as database:
                with psycopg.connect(database.dsn, autocommit=True) as conn:
                    results.append(fill(conn, 40, exclude=[session.project.version_table]))
    first, second = results
    assert (first.rows, first.rejected) == (second.rows, second.rejected)
    assert len(first.rows) == 6 and all(n >= 36 for n in first.rows.values()), first.rows
