"""alarm texts in vi and en, rule clear-after duration and name in both languages, throttled
alarm update events (issue 13 item 5, issue 17)

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('alarm', sa.Column('message_i18n', postgresql.JSONB(), nullable=True))
    op.add_column('alarm', sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('rule', sa.Column('clear_seconds', sa.Integer(), nullable=False,
                                    server_default='0'))
    op.add_column('rule', sa.Column('name_i18n', postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column('rule', 'name_i18n')
    op.drop_column('rule', 'clear_seconds')
    op.drop_column('alarm', 'notified_at')
    op.drop_column('alarm', 'message_i18n')
