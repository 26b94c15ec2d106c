"""Many machines on one history: shards walk different examples, and share their failures
through a Redis example database, which a test starts for real (Debian's redis-server).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Iterator

import pytest
import redis

from harness import commands
from harness.errors import HarnessError
from harness.settings import load_settings
from projects import Rev, chain, make_project


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    program = shutil.which("redis-server")
    assert program, "redis-server is not installed: apt-get install redis-server (.ci/run does)"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_two_shards_of_one_seed_walk_different_examples(tmp_path, pg_server):
    ini = make_project(tmp_path, chain("a", "b", "c", "d"))

    def shard(index: int):
        return commands.walk(load_settings(ini), seed=9, max_examples=6, steps=8, server=pg_server,
                             shard=(index, 2)).coverage

    first, second, first_again = shard(1), shard(2), shard(1)
    assert first == first_again
    assert first["revisions"] != second["revisions"]


def test_a_shard_that_does_not_exist_is_refused(tmp_path, pg_server):
    ini = make_project(tmp_path, chain("a"))
    with pytest.raises(HarnessError, match="shard 3/2 does not exist"):
        commands.walk(load_settings(ini), seed=1, server=pg_server, shard=(3, 2))


# Fails only on rows: Hypothesis's simplest example (its first) never seeds any.
NOT_NULL_ON_ROWS = [Rev("a"), Rev("b", down="a",
                                 upgrade='op.add_column("t_a", sa.Column("y", sa.Integer, nullable=False))',
                                 downgrade='op.drop_column("t_a", "y")')]


def test_a_failure_saved_by_one_shard_is_replayed_first_by_another(tmp_path, pg_server, redis_url):
    """Each run of shard 2 stops after its first example: the replay, when there is one."""
    redis.Redis.from_url(redis_url).flushdb()
    one, two = tmp_path / "one", tmp_path / "two"  # two machines: no local directory shared
    ini_one, ini_two = make_project(one, NOT_NULL_ON_ROWS), make_project(two, NOT_NULL_ON_ROWS)

    def walk(ini, shard, **options):
        return commands.walk(load_settings(ini, examples=redis_url, **options.pop("settings", {})),
                             steps=10, server=pg_server, shard=(shard, 2),
                             database_dir=ini.parent / ".harness" / "examples", **options)

    # The first example Hypothesis generates is its simplest: it seeds no rows...
    alone = walk(ini_two, 2, seed=1, settings={"duration": 0.001})
    assert alone.ok and alone.health["examples"] == 1
    # ...shard 1 finds it in a longer walk and saves it...
    found = walk(ini_one, 1, seed=1, max_examples=60)
    assert [(v.property, v.revision) for v in found.violations] == [("migration_error", "b")]
    assert redis.Redis.from_url(redis_url).keys("harness-examples:*")
    # ...and the next run of shard 2, on another machine, replays it before anything else.
    replayed = walk(ini_two, 2, settings={"duration": 0.001})
    assert [(v.property, v.revision) for v in replayed.violations] == [("migration_error", "b")]
    assert replayed.stopped == "duration"


def test_an_unreachable_example_database_is_one_clear_error(tmp_path, pg_server):
    ini = make_project(tmp_path, chain("a"))
    with pytest.raises(HarnessError, match="cannot reach the example database at redis://127.0.0.1:1/0"):
        commands.walk(load_settings(ini, examples="redis://127.0.0.1:1/0"), seed=1, server=pg_server)


def test_shards_sharing_redis_read_each_others_coverage(tmp_path, pg_server, redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    one, two = tmp_path / "one", tmp_path / "two"
    ini_one, ini_two = make_project(one, chain("a", "b")), make_project(two, chain("a", "b"))

    def walk(ini, shard):
        return commands.walk(load_settings(ini, examples=redis_url), seed=4, max_examples=3, steps=6,
                             server=pg_server, shard=(shard, 2),
                             database_dir=ini.parent / ".harness" / "examples").coverage

    first, second = walk(ini_one, 1), walk(ini_two, 2)
    assert first["merged"]["runs"] == 1 and second["merged"]["runs"] == 2
    assert second["merged"]["edges"]["upgrade b"]["ran"] == (
        first["revisions"]["b"]["upgrade"] + second["revisions"]["b"]["upgrade"])
