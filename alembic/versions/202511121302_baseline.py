"""baseline

The empty starting point: databases created before this history existed are stamped here
(`alembic stamp 202511121302`) and every later revision builds on it.

Revision ID: 202511121302
Revises:
Create Date: 2025-11-12 13:02:00+00:00

"""

from typing import Sequence, Union

revision: str = "202511121302"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Nothing to create: the baseline only marks where the history starts."""


def downgrade() -> None:
    """Nothing to remove."""
