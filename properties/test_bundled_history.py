"""The property walk over the bundled migration history (``tox -e properties``, ``tox -e nightly``).

Every claim of the seed document's "Migration Safety Verification" -- reversible, no data loss,
tenant isolation, rollback order -- executed instead of ticked by hand. The plugin's options
choose the budget (``--harness-profile``), the number of parallel walks (one per pytest-xdist
worker at night) and the PostgreSQL versions (``HARNESS_PG_VERSIONS=15,18``).
"""

from pathlib import Path

from harness.pytest_plugin import sweep_test, walk_test

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"

test_every_revision_round_trips = sweep_test(ALEMBIC_INI)
test_random_walk_keeps_every_property = walk_test(ALEMBIC_INI)
