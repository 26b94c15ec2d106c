"""harness: executes Alembic migrations on real PostgreSQL and checks that they are safe.

The public API is small: :func:`walk` (the random walk), :func:`sweep` (every revision up, down,
up), :func:`replay` (a recorded failure again), :class:`Settings` and :func:`load_settings`,
and for the walk's rows :class:`Overrides` (strategies of your own for tables or columns) and
:data:`DEFAULT` (a value meaning "leave the column to its default"). Everything else is
internal and free to change.
"""

from .commands import RunResult, replay, sweep, walk
from .errors import HarnessError
from .seeding import DEFAULT, Overrides
from .settings import Settings, load_settings

__all__ = [
    "DEFAULT", "HarnessError", "Overrides", "RunResult", "Settings", "load_settings", "replay",
    "sweep", "walk",
]
