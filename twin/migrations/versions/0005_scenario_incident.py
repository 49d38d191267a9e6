"""a flood scenario may belong to an incident (the /ops flood layer)

Revision ID: 0005
Revises: 0004

``scenario.incident_id`` (nullable, ON DELETE SET NULL, indexed) is the link that lists
and the /ops flood layer query; until now it was only the ``incident_id`` key in
``params`` (which keeps echoing what was asked). Existing keys are copied over when the
incident still exists.
"""
from alembic import op
import sqlalchemy as sa
import geoalchemy2

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('scenario', sa.Column('incident_id', sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f('fk_scenario_incident_id_incident'), 'scenario', 'incident',
                          ['incident_id'], ['id'], ondelete='SET NULL')
    op.create_index(op.f('ix_scenario_incident_id'), 'scenario', ['incident_id'], unique=False)
    op.execute(
        "UPDATE scenario s SET incident_id = i.id FROM incident i "
        "WHERE s.params ->> 'incident_id' ~ '^[0-9]+$' "
        "AND i.id = CAST(s.params ->> 'incident_id' AS bigint)"
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_scenario_incident_id'), table_name='scenario')
    op.drop_constraint(op.f('fk_scenario_incident_id_incident'), 'scenario', type_='foreignkey')
    op.drop_column('scenario', 'incident_id')
