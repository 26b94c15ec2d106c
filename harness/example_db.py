"""Where a walk keeps the failures it found, so that the next walk replays them first.

By default a directory beside ``alembic.ini`` (cached between CI jobs). The ``examples`` setting
adds a second database, multiplexed with the local directory, through Hypothesis's own classes:

* ``redis://host:6379/0``: :class:`RedisExampleDatabase`, read and written. Several machines
  walking one history together (shards of a CI matrix) share it: a failure found by one shard is
  replayed first by every later run, wherever it runs.
* ``github-artifact://owner/repo/artifact-name``: :class:`GitHubArtifactDatabase`, read only
  (:class:`ReadOnlyDatabase`), for pull requests: the examples a nightly workflow uploaded as
  that artifact (the ``.harness/examples`` directory) are replayed first, and what the pull
  request finds stays in its own directory. Downloaded on first use with ``GITHUB_TOKEN`` and
  cached for a day under ``.harness/github-artifacts/``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    GitHubArtifactDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

from .errors import HarnessError

KEY_PREFIX = b"harness-examples:"
ARTIFACT_SCHEME = "github-artifact://"
ARTIFACT_NAME = "harness-examples"
"""The artifact's name when the URL gives none."""
_HINT = 'write examples = "redis://host:6379/0" or "github-artifact://owner/repo/artifact-name"'


@functools.lru_cache(maxsize=None)
def example_database(directory: Path | None, shared: str | None = None) -> ExampleDatabase | None:
    """The local ``directory``, and the database at ``shared`` (see the module's doc).

    One object per directory and URL in a process: the walk and its coverage share one Redis
    connection pool and one download of an artifact.
    """
    local = DirectoryBasedExampleDatabase(str(directory)) if directory else None
    if not shared:
        return local
    if shared.startswith(ARTIFACT_SCHEME):
        remote = _github_artifact(shared, directory.parent / "github-artifacts" if directory else None)
    else:
        remote = _redis(shared)
    return MultiplexedDatabase(local, remote) if local is not None else remote


def _github_artifact(url: str, cache: Path | None) -> ExampleDatabase:
    parts = url[len(ARTIFACT_SCHEME):].rstrip("/").split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise HarnessError(f"examples = {url!r} is not owner/repo/artifact-name", hint=_HINT)
    owner, repo, name = (*parts, ARTIFACT_NAME) if len(parts) == 2 else parts
    return ReadOnlyDatabase(GitHubArtifactDatabase(
        owner, repo, artifact_name=name, path=cache / name if cache else None,
    ))


def _redis(url: str) -> ExampleDatabase:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise HarnessError(f"examples = {url!r} is neither a Redis URL nor a GitHub artifact",
                           hint=_HINT)
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
