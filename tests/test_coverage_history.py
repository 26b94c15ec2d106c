"""Coverage merged across runs: per edge how often it ran, and how often with rows in the tables
it changes; saved beside the examples so that every run (and every shard) adds to it."""

from __future__ import annotations

import json

from harness import cli, commands, coverage_history
from harness.example_db import example_database
from harness.session import open_session
from harness.settings import load_settings
from harness.trial import Trial, insert_rows
from projects import Rev, make_project

# b and d restructure t_a and t_c; c creates t_c.
HISTORY = [
    Rev("a"),
    Rev("b", down="a", upgrade='op.add_column("t_a", sa.Column("x", sa.Integer))',
        downgrade='op.drop_column("t_a", "x")'),
    Rev("c", down="b"),
    Rev("d", down="c", upgrade='op.add_column("t_c", sa.Column("y", sa.Integer))',
        downgrade='op.drop_column("t_c", "y")'),
]


def test_a_step_runs_with_data_only_when_a_table_it_changes_holds_rows(tmp_path, pg_server):
    ini = make_project(tmp_path, HISTORY)
    with open_session(load_settings(ini), pg_server) as session:
        trial = Trial(session)
        try:
            trial.upgrade("a")  # an empty database
            trial.seed(lambda conn: insert_rows(conn, [("public.t_a", {"id": 1})]))
            trial.upgrade("b")  # t_a holds a row
            trial.upgrade("c")  # creates t_c: rows elsewhere count
            trial.upgrade("d")  # t_c is empty: no data in what it changes
            trial.downgrade("d")
            trial.downgrade("c")
        finally:
            trial.close()
        with_data = session.coverage.with_data
    assert session.coverage.steps[("upgrade", "a")] == 1 and not with_data[("upgrade", "a")]
    assert with_data[("upgrade", "b")] == 1
    assert with_data[("upgrade", "c")] == 1
    assert not with_data[("upgrade", "d")] and not with_data[("downgrade", "d")]
    assert not with_data[("downgrade", "c")]  # drops t_c, which is empty


def test_walks_add_their_coverage_to_what_earlier_runs_saved(tmp_path, pg_server):
    ini = make_project(tmp_path, HISTORY)
    examples = ini.parent / ".harness" / "examples"

    def walk(seed: int):
        return commands.walk(load_settings(ini), seed=seed, max_examples=4, steps=8,
                             database_dir=examples, server=pg_server).coverage

    first, second = walk(1), walk(2)
    assert first["merged"]["runs"] == 1 and second["merged"]["runs"] == 2
    merged = second["merged"]
    assert merged["examples"] == first["examples"] + second["examples"]
    for rev in ("a", "b", "c", "d"):
        for op in ("upgrade", "downgrade"):
            counts = merged["edges"][f"{op} {rev}"]
            assert counts["ran"] == first["revisions"][rev][op] + second["revisions"][rev][op]
            assert counts["with_data"] == first["with_data"][rev][op] + second["with_data"][rev][op]
            assert counts["with_data"] <= counts["ran"]
    assert any(c["with_data"] for c in merged["edges"].values())  # walks start from filled states
    # The same seed again is another run, counted again.
    assert walk(1)["merged"]["runs"] == 3
    # Saved in the example database, readable by any later run.
    assert coverage_history.read(example_database(examples))["runs"] == 3


def test_the_cli_prints_coverage_with_data_and_merges_the_shards_results(tmp_path, pg_server, capsys):
    ini = make_project(tmp_path, HISTORY)
    url = pg_server.dsn()
    results = []
    for shard in (1, 2):
        path = tmp_path / f"harness-{shard}.json"
        code = cli.main(["walk", "-c", str(ini), "--seed", "3", "--max-examples", "4", "--steps", "8",
                         "--shard", f"{shard}/2", "--json", str(path), "--database-url", url])
        assert code == 0
        results.append(json.loads(path.read_text()))
    out = capsys.readouterr().out
    assert " on rows)" in out and "over 1 run (" in out and "over 2 runs (" in out
    # a's upgrade starts from the empty database: never an edge that could run on rows
    assert "/7 with rows in place" in out and results[0]["coverage"]["from_empty"] == ["a"]

    merged_path = tmp_path / "merged.json"
    assert cli.main(["coverage", "merge", *(str(tmp_path / f"harness-{i}.json") for i in (1, 2)),
                     "--json", str(merged_path)]) == 0
    out = capsys.readouterr().out
    merged = json.loads(merged_path.read_text())
    assert merged["runs"] == 2 and merged["examples"] == sum(r["coverage"]["examples"] for r in results)
    assert merged["edges"]["upgrade b"]["ran"] == sum(r["coverage"]["revisions"]["b"]["upgrade"] for r in results)
    assert out.startswith("harness coverage: 2 files, 2 runs, ")
    assert "upgrade b" in out and "with rows" in out


def test_merging_a_file_that_is_no_result_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("not json")
    assert cli.main(["coverage", "merge", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: cannot read coverage from {tmp_path / 'bad.json'}")


def test_an_upgrade_after_revisions_that_create_no_table_is_no_edge_that_could_run_on_rows(tmp_path, pg_server):
    """A baseline that creates only a schema, as the bundled history's does: the first table's
    upgrade never has rows before it, and is not called out for it."""
    history = [Rev("s", upgrade='op.execute("CREATE SCHEMA app")', downgrade='op.execute("DROP SCHEMA app")'),
               Rev("a", down="s"), Rev("b", down="a")]
    ini = make_project(tmp_path, history)
    coverage = commands.walk(load_settings(ini), seed=2, max_examples=6, steps=10, server=pg_server,
                             database_dir=ini.parent / ".harness" / "examples").coverage
    assert coverage["from_empty"] == ["s", "a"]
    lines = coverage_history.summary(coverage["merged"], ["s", "a", "b"])
    assert lines[0].endswith("/4 with rows in place")
    assert all("upgrade a" not in line and "upgrade s" not in line for line in lines[1:])
