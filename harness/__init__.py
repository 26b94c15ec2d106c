"""harness: executes Alembic migrations on real PostgreSQL and checks that they are safe.

The public API is small: :func:`walk` (the random walk), :func:`sweep` (every revision up, down,
up), :func:`replay` (a recorded failure again), :class:`Settings` and :func:`load_settings`.
Everything else is internal and free to change.
"""

from .commands import RunResult, replay, sweep, walk
from .errors import HarnessError
from .settings import Settings, load_settings

__all__ = ["HarnessError", "RunResult", "Settings", "load_settings", "replay", "sweep", "walk"]
