"""rate-limit counters shared by every server worker

Revision ID: 0007
Revises: 0006

``rate_limit``: one row per limited caller and purpose (``bucket``): its hits in the
current window (number ``win`` of ``window_s`` seconds since the epoch) and in the one
before (``prev``), for a sliding-window estimate. UNLOGGED: counters are cheap to lose (a
crash forgets them) and need no WAL; no version trigger, so a write does not NOTIFY.
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE UNLOGGED TABLE rate_limit (
            bucket text PRIMARY KEY,
            window_s integer NOT NULL,
            win bigint NOT NULL,
            hits integer NOT NULL,
            prev integer NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.drop_table('rate_limit')
