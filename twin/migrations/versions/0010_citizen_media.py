"""citizen reports: photos and supporters

Revision ID: 0010
Revises: 0009

``incident_media``: a report's photos, re-encoded (no EXIF) with a thumbnail, in the
database so a report and its photos are written in one transaction. ``incident_supporter``:
one row per "me too" on a report — anonymous, or the citizen's own report (its id) that
was linked to it; no personal data.
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE incident_media (
            id bigserial PRIMARY KEY,
            incident_id bigint NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
            name text NOT NULL UNIQUE,
            position integer NOT NULL,
            content_type text NOT NULL,
            width integer NOT NULL,
            height integer NOT NULL,
            data bytea NOT NULL,
            thumb bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX ix_incident_media_incident_id ON incident_media (incident_id)")
    op.execute(
        """
        CREATE TABLE incident_supporter (
            id bigserial PRIMARY KEY,
            incident_id bigint NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
            report_id bigint REFERENCES incident(id) ON DELETE SET NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_incident_supporter_incident_id ON incident_supporter (incident_id)"
    )
    # a citizen's own report supports another at most once
    op.execute(
        "CREATE UNIQUE INDEX uq_incident_supporter_report ON incident_supporter "
        "(incident_id, report_id) WHERE report_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table('incident_supporter')
    op.drop_table('incident_media')
