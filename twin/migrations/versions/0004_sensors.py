"""SensorThings entities, observations, rules and alarms

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
import geoalchemy2

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
