"""Provisioning: the embedded server, scratch databases, the URL and container backends."""

from __future__ import annotations

import json
import socket
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from harness.errors import HarnessError, ServerError
from harness.server import Server, open_server, start_server
from harness.server.binaries import find_binaries
from harness.server.embedded import EmbeddedServer
from harness.server.remote import UrlServer
from harness.settings import Settings


def _exists(server: Server, name: str) -> bool:
    row = server.admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def test_embedded_server_starts_answers_and_leaves_nothing() -> None:
    server = EmbeddedServer(find_binaries())
    with psycopg.connect(server.dsn()) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
    directory = server.directory
    assert directory.is_dir()
    server.close()
    assert not directory.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.dsn(), connect_timeout=2)


def test_scratch_database_is_created_cloned_and_dropped(pg_server: Server) -> None:
    template = pg_server.create_database()
    with psycopg.connect(template.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)")
    with pg_server.scratch(template=template.name) as clone:
        assert clone.name.startswith("harness_") and clone.name != template.name
        with psycopg.connect(clone.dsn) as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert not _exists(pg_server, clone.name)
    pg_server.drop_database(template.name)
    assert not _exists(pg_server, template.name)


def test_scratch_database_is_dropped_when_the_block_fails(pg_server: Server) -> None:
    with pytest.raises(RuntimeError):
        with pg_server.scratch() as database:
            raise RuntimeError("boom")
    assert not _exists(pg_server, database.name)


def test_dropping_a_database_with_open_connections_forces_them_out(pg_server: Server) -> None:
    database = pg_server.create_database()
    conn = psycopg.connect(database.dsn)
    pg_server.drop_database(database.name)
    assert not _exists(pg_server, database.name)
    conn.close()


def test_only_harness_databases_can_be_dropped(pg_server: Server) -> None:
    with pytest.raises(ServerError, match="not a harness scratch database"):
        pg_server.drop_database("postgres")


def test_sqlalchemy_url_names_the_driver(scratch_db) -> None:
    assert scratch_db.sqlalchemy_url("psycopg2").startswith("postgresql+psycopg2://")
    assert scratch_db.sqlalchemy_url("psycopg").endswith("/" + scratch_db.name)


def test_unknown_server_version_names_what_was_found() -> None:
    with pytest.raises(ServerError, match=r"PostgreSQL 99 server programs not found \(found: \d+"):
        find_binaries(99)


_CHILD = textwrap.dedent(
    """
    import json, signal, sys, time
    from harness.server import open_server
    from harness.settings import Settings
    # Ctrl-C as a terminal sends it: a suite started in the background (`cmd &`, nohup) hands
    # its children SIGINT ignored, and the test would wait for a signal that never arrives.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with open_server(Settings()) as server:
        db = server.create_database()
        print(json.dumps({"dir": str(server.directory), "dsn": server.dsn(), "db": db.name}), flush=True)
        time.sleep(60)
    """
)


def _start_child() -> tuple[subprocess.Popen[str], dict]:
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    return child, json.loads(child.stdout.readline())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_stops_its_server_and_removes_its_cluster(signum: int) -> None:
    child, info = _start_child()
    child.send_signal(signum)
    child.wait(timeout=30)
    assert not Path(info["dir"]).exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(info["dsn"], connect_timeout=2)


def test_a_killed_run_is_cleaned_up_by_the_next_one() -> None:
    child, info = _start_child()
    child.kill()
    child.wait(timeout=30)
    # The server dies with its parent; the directory is left for the janitor.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            psycopg.connect(info["dsn"], connect_timeout=1).close()
        except psycopg.OperationalError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the server outlived its killed parent")
    assert Path(info["dir"]).exists()
    with open_server(Settings()) as server:
        assert not Path(info["dir"]).exists()
        assert server.directory != Path(info["dir"])


def test_url_server_creates_only_its_own_databases(pg_server: Server) -> None:
    user_db = pg_server.create_database()  # stands in for the user's own database
    remote = UrlServer(user_db.sqlalchemy_url("psycopg2"))
    try:
        with remote.scratch() as database:
            assert database.name != user_db.name
            assert _exists(pg_server, database.name)
        assert not _exists(pg_server, database.name)
        assert _exists(pg_server, user_db.name)
    finally:
        remote.close()
        pg_server.drop_database(user_db.name)


def test_url_server_janitor_drops_dead_runs_databases_and_nothing_else(pg_server: Server) -> None:

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    leftover = pg_server.create_database()
    owner = json.dumps({"host": socket.gethostname(), "pid": int(dead)})
    pg_server.admin.execute(f"COMMENT ON DATABASE {leftover.name} IS 'harness scratch {owner}'")
    pg_server.admin.execute("CREATE DATABASE harness_not_ours")
    try:
        UrlServer(pg_server.dsn()).close()
        assert not _exists(pg_server, leftover.name)
        assert _exists(pg_server, "harness_not_ours")
        assert _exists(pg_server, "postgres")
    finally:
        pg_server.admin.execute("DROP DATABASE IF EXISTS harness_not_ours")


def test_unreachable_url_is_one_clear_line() -> None:
    with pytest.raises(ServerError) as excinfo:
        start_server(Settings(server="url", database_url="postgresql://nobody@127.0.0.1:1/postgres"))
    message = str(excinfo.value)
    assert "cannot connect to PostgreSQL at postgresql://nobody@127.0.0.1:1/postgres" in message
    assert "\n" not in message


def test_refused_login_is_one_clear_line(pg_server: Server) -> None:
    url = pg_server.dsn().replace("postgres@", "no_such_role:secret@", 1)
    with pytest.raises(ServerError) as excinfo:
        start_server(Settings(server="url", database_url=url))
    assert "no_such_role" in str(excinfo.value)
    assert "secret" not in str(excinfo.value)


def test_url_must_be_postgresql() -> None:
    with pytest.raises(ServerError, match="must start with postgresql://"):
        start_server(Settings(server="url", database_url="mysql://x@localhost/db"))


def test_container_backend_without_docker_says_so_in_one_line() -> None:
    env_has_docker = os.path.exists("/var/run/docker.sock")
    if env_has_docker:
        pytest.fail("this test expects a machine without a Docker daemon; run it elsewhere")
    with pytest.raises(ServerError, match="no Docker daemon reachable") as excinfo:
        start_server(Settings(server="container", pg_version=15))
    assert "\n" not in str(excinfo.value)
    assert isinstance(excinfo.value, HarnessError)


def test_two_major_versions_run_side_by_side() -> None:
    with open_server(Settings(pg_version=15)) as old, open_server(Settings(pg_version=18)) as new:
        versions = {
            server.admin.execute("SHOW server_version_num").fetchone()[0][:2] for server in (old, new)
        }
    assert versions == {"15", "18"}


def test_binaries_behind_a_private_directory_still_run(tmp_path: Path) -> None:
    # As root the server runs as nobody, who cannot enter a 0700 directory such as a venv
    # under /root: the harness must copy the installation somewhere it can.
    package = find_binaries(18).bin_dir.parent.parent
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    for tree in (package, package.with_name(package.name + ".libs")):
        shutil.copytree(tree, private / tree.name, symlinks=True)
    bin_dir = private / package.name / "pginstall" / "bin"
    with open_server(Settings(pg_bin_dir=str(bin_dir))) as server:
        with psycopg.connect(server.dsn()) as conn:
            assert conn.info.server_version // 10000 == 18
