"""Where a walk keeps the failures it found, so that the next walk replays them first.

By default a directory beside ``alembic.ini`` (cached between CI jobs). Several machines walking
one history together (shards of a CI matrix) share a Redis server instead, through Hypothesis's
own :class:`RedisExampleDatabase`, multiplexed with the local directory: a failure found by one
shard is replayed first by every later run, wherever it runs.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase, MultiplexedDatabase

from .errors import HarnessError

KEY_PREFIX = b"harness-examples:"


def example_database(directory: Path | None, shared: str | None = None) -> ExampleDatabase | None:
    """The local ``directory``, and the Redis database at ``shared`` (a ``redis://`` URL)."""
    local = DirectoryBasedExampleDatabase(str(directory)) if directory else None
    if not shared:
        return local
    remote = _redis(shared)
    return MultiplexedDatabase(local, remote) if local is not None else remote


def _redis(url: str) -> ExampleDatabase:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise HarnessError(f"examples = {url!r} is not a Redis URL",
                           hint='write examples = "redis://host:6379/0"')
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise HarnessError("a shared example database needs the redis package",
                           hint="pip install 'harness[redis]'") from None
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise HarnessError(f"cannot reach the example database at {url}: {exc}",
                           hint="start the Redis service, or remove examples from [tool.harness]") from None
    return RedisExampleDatabase(client, key_prefix=KEY_PREFIX)
