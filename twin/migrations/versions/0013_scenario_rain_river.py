"""scenario kinds rain and river (issue 16: rain floods, river floods)

Revision ID: 0013
Revises: 0012
"""
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(op.f('ck_scenario_kind_known'), 'scenario', type_='check')
    op.create_check_constraint(
        op.f('ck_scenario_kind_known'), 'scenario',
        "kind IN ('flood', 'closure', 'outage', 'rain', 'river')")


def downgrade() -> None:
    op.execute("DELETE FROM scenario WHERE kind IN ('rain', 'river')")
    op.drop_constraint(op.f('ck_scenario_kind_known'), 'scenario', type_='check')
    op.create_check_constraint(op.f('ck_scenario_kind_known'), 'scenario',
                               "kind IN ('flood', 'closure', 'outage')")
