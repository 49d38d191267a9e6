"""SensorThings entities, observations, rules and alarms

Revision ID: 0004
Revises: 0003

Written by hand: ``observation`` is range-partitioned by month (with a default
partition), which autogenerate cannot express. ``twin_observation_partition(month)``
creates a month's partition, moving any rows the default partition holds for it.
"""
from alembic import op
import sqlalchemy as sa
import geoalchemy2

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# tables whose writes change the live sensor layer; `observation` inserts bump their
# version from the ingester once per batch, as its last statement (a statement trigger
# on the insert would hold the one table_version row locked for the rest of the batch)
VERSIONED = ("thing", "location", "thing_location", "datastream", "alarm")

TABLES = """
CREATE TABLE thing (
  id bigserial CONSTRAINT pk_thing PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  kind text,
  public boolean NOT NULL DEFAULT true,
  properties jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_thing_kind ON thing (kind);

CREATE TABLE location (
  id bigserial CONSTRAINT pk_location PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  encoding_type text NOT NULL DEFAULT 'application/geo+json',
  properties jsonb,
  geom geometry(Geometry, 4326) NOT NULL
);
CREATE INDEX idx_location_geom ON location USING gist (geom);

CREATE TABLE thing_location (
  thing_id bigint NOT NULL CONSTRAINT fk_thing_location_thing_id_thing
    REFERENCES thing (id) ON DELETE CASCADE,
  location_id bigint NOT NULL CONSTRAINT fk_thing_location_location_id_location
    REFERENCES location (id) ON DELETE CASCADE,
  CONSTRAINT pk_thing_location PRIMARY KEY (thing_id, location_id)
);
CREATE INDEX ix_thing_location_location_id ON thing_location (location_id);

CREATE TABLE historical_location (
  id bigserial CONSTRAINT pk_historical_location PRIMARY KEY,
  thing_id bigint NOT NULL CONSTRAINT fk_historical_location_thing_id_thing
    REFERENCES thing (id) ON DELETE CASCADE,
  location_id bigint CONSTRAINT fk_historical_location_location_id_location
    REFERENCES location (id) ON DELETE SET NULL,
  time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_historical_location_thing_id ON historical_location (thing_id);
CREATE INDEX ix_historical_location_location_id ON historical_location (location_id);

CREATE TABLE sensor (
  id bigserial CONSTRAINT pk_sensor PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  encoding_type text NOT NULL,
  metadata text NOT NULL DEFAULT '',
  properties jsonb
);

CREATE TABLE observed_property (
  id bigserial CONSTRAINT pk_observed_property PRIMARY KEY,
  name text NOT NULL,
  definition text NOT NULL,
  description text NOT NULL DEFAULT '',
  properties jsonb
);

CREATE TABLE feature_of_interest (
  id bigserial CONSTRAINT pk_feature_of_interest PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  encoding_type text NOT NULL DEFAULT 'application/geo+json',
  properties jsonb,
  geom geometry(Geometry, 4326) NOT NULL
);
CREATE INDEX idx_feature_of_interest_geom ON feature_of_interest USING gist (geom);

CREATE TABLE datastream (
  id bigserial CONSTRAINT pk_datastream PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  unit_of_measurement jsonb NOT NULL,
  observation_type text NOT NULL,
  properties jsonb,
  thing_id bigint NOT NULL CONSTRAINT fk_datastream_thing_id_thing
    REFERENCES thing (id) ON DELETE CASCADE,
  sensor_id bigint NOT NULL CONSTRAINT fk_datastream_sensor_id_sensor REFERENCES sensor (id),
  observed_property_id bigint NOT NULL
    CONSTRAINT fk_datastream_observed_property_id_observed_property
    REFERENCES observed_property (id),
  default_foi_id bigint CONSTRAINT fk_datastream_default_foi_id_feature_of_interest
    REFERENCES feature_of_interest (id) ON DELETE SET NULL,
  is_primary boolean NOT NULL DEFAULT false,
  no_signal_minutes integer NOT NULL DEFAULT 60,
  observed_area geometry(Geometry, 4326)
);
CREATE INDEX ix_datastream_thing_id ON datastream (thing_id);
CREATE INDEX ix_datastream_sensor_id ON datastream (sensor_id);
CREATE INDEX ix_datastream_observed_property_id ON datastream (observed_property_id);

CREATE SEQUENCE observation_id_seq AS bigint CACHE 100;
CREATE TABLE observation (
  id bigint NOT NULL DEFAULT nextval('observation_id_seq'),
  datastream_id bigint NOT NULL,
  phenomenon_time timestamptz NOT NULL,
  phenomenon_time_end timestamptz,
  result_time timestamptz,
  result double precision,
  result_json jsonb,
  quality jsonb,
  parameters jsonb,
  foi_id bigint,
  CONSTRAINT pk_observation PRIMARY KEY (datastream_id, phenomenon_time)
) PARTITION BY RANGE (phenomenon_time);
ALTER SEQUENCE observation_id_seq OWNED BY observation.id;
CREATE INDEX ix_observation_id ON observation (id);
CREATE INDEX ix_observation_phenomenon_time_brin ON observation USING brin (phenomenon_time);
CREATE TABLE observation_default PARTITION OF observation DEFAULT;

CREATE TABLE rule (
  id bigserial CONSTRAINT pk_rule PRIMARY KEY,
  datastream_id bigint NOT NULL CONSTRAINT fk_rule_datastream_id_datastream
    REFERENCES datastream (id) ON DELETE CASCADE,
  name text NOT NULL,
  kind text NOT NULL CONSTRAINT ck_rule_kind_known
    CHECK (kind IN ('above', 'below', 'rate', 'no_signal')),
  threshold double precision,
  clear_threshold double precision,
  window_seconds integer NOT NULL DEFAULT 900,
  hold_seconds integer NOT NULL DEFAULT 0,
  no_signal_minutes integer,
  severity integer NOT NULL DEFAULT 3 CONSTRAINT ck_rule_severity_1_5
    CHECK (severity BETWEEN 1 AND 5),
  opens_incident boolean NOT NULL DEFAULT false,
  incident_category text NOT NULL DEFAULT 'flood',
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_rule_datastream_id ON rule (datastream_id);

CREATE TABLE alarm (
  id bigserial CONSTRAINT pk_alarm PRIMARY KEY,
  rule_id bigint NOT NULL CONSTRAINT fk_alarm_rule_id_rule
    REFERENCES rule (id) ON DELETE CASCADE,
  datastream_id bigint NOT NULL CONSTRAINT fk_alarm_datastream_id_datastream
    REFERENCES datastream (id) ON DELETE CASCADE,
  thing_id bigint NOT NULL CONSTRAINT fk_alarm_thing_id_thing
    REFERENCES thing (id) ON DELETE CASCADE,
  kind text NOT NULL,
  severity integer NOT NULL,
  message text NOT NULL,
  value double precision,
  raised_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  occurrences integer NOT NULL DEFAULT 1,
  acknowledged_at timestamptz,
  acknowledged_by text,
  cleared_at timestamptz,
  cleared_by text,
  assignee text,
  incident_id bigint CONSTRAINT fk_alarm_incident_id_incident
    REFERENCES incident (id) ON DELETE SET NULL
);
CREATE INDEX ix_alarm_rule_id ON alarm (rule_id);
CREATE INDEX ix_alarm_thing_id ON alarm (thing_id);
CREATE INDEX ix_alarm_cleared_at ON alarm (cleared_at);
CREATE UNIQUE INDEX uq_alarm_open_per_rule ON alarm (rule_id, datastream_id)
  WHERE cleared_at IS NULL;

CREATE TABLE gateway (
  id bigserial CONSTRAINT pk_gateway PRIMARY KEY,
  name text NOT NULL CONSTRAINT uq_gateway_name UNIQUE,
  key_hash text NOT NULL CONSTRAINT uq_gateway_key_hash UNIQUE,
  key_prefix text NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz
);
"""

PARTITION_FN = """
CREATE OR REPLACE FUNCTION twin_observation_partition(m date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  lo timestamptz := make_timestamptz(extract(year FROM m)::int, extract(month FROM m)::int,
                                     1, 0, 0, 0, 'UTC');
  hi timestamptz := lo + interval '1 month';
  name_ text := 'observation_y' || to_char(m, 'YYYY') || 'm' || to_char(m, 'MM');
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('twin_observation_partition'));
  IF to_regclass(name_) IS NOT NULL THEN
    RETURN name_;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE observation INCLUDING DEFAULTS)', name_);
  EXECUTE format('INSERT INTO %I SELECT * FROM observation_default '
                 'WHERE phenomenon_time >= %L AND phenomenon_time < %L', name_, lo, hi);
  DELETE FROM observation_default WHERE phenomenon_time >= lo AND phenomenon_time < hi;
  EXECUTE format('ALTER TABLE observation ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                 name_, lo, hi);
  RETURN name_;
END $$;
"""

# Things with the newest reading of their primary datastream and their state, for the
# live `sensors` layer. alarm: an open alarm of severity >= 4; warning: any other open
# alarm; no_signal: an open no-signal alarm, or no reading within the datastream's window.
SENSOR_STATE = """
CREATE VIEW sensor_state AS
SELECT t.id, t.name, t.kind, t.public,
       CASE
         WHEN a.max_severity >= 4 THEN 'alarm'
         WHEN a.no_signal OR o.phenomenon_time IS NULL
              OR o.phenomenon_time < now() - make_interval(mins => d.no_signal_minutes)
           THEN 'no_signal'
         WHEN a.n > 0 THEN 'warning'
         ELSE 'normal'
       END AS state,
       COALESCE(o.result, CASE WHEN jsonb_typeof(o.result_json) = 'boolean'
                               THEN CASE WHEN o.result_json = 'true' THEN 1 ELSE 0 END END)
         AS last_value,
       d.unit_of_measurement ->> 'symbol' AS unit,
       o.phenomenon_time AS last_time,
       d.id AS datastream_id,
       d.name AS datastream_name,
       COALESCE(a.n, 0)::integer AS open_alarms,
       l.geom,
       ST_Transform(l.geom, 3857) AS geom_3857
FROM thing t
JOIN LATERAL (
  SELECT ST_PointOnSurface(lo.geom) AS geom
  FROM thing_location tl JOIN location lo ON lo.id = tl.location_id
  WHERE tl.thing_id = t.id ORDER BY lo.id DESC LIMIT 1
) l ON true
LEFT JOIN LATERAL (
  SELECT ds.id, ds.name, ds.unit_of_measurement, ds.no_signal_minutes
  FROM datastream ds WHERE ds.thing_id = t.id
  ORDER BY ds.is_primary DESC, ds.id LIMIT 1
) d ON true
LEFT JOIN LATERAL (
  SELECT ob.phenomenon_time, ob.result, ob.result_json FROM observation ob
  WHERE ob.datastream_id = d.id ORDER BY ob.phenomenon_time DESC LIMIT 1
) o ON true
LEFT JOIN LATERAL (
  SELECT max(al.severity) FILTER (WHERE al.kind <> 'no_signal') AS max_severity,
         bool_or(al.kind = 'no_signal') AS no_signal,
         count(*) AS n
  FROM alarm al WHERE al.thing_id = t.id AND al.cleared_at IS NULL
) a ON true
"""


def upgrade() -> None:
    op.execute(TABLES)
    op.execute(PARTITION_FN)
    # partitions around today; the ingester adds later months as they come
    op.execute(
        "SELECT twin_observation_partition((date_trunc('month', now() AT TIME ZONE 'UTC') "
        "+ make_interval(months => k))::date) FROM generate_series(-2, 3) AS k"
    )
    op.execute(SENSOR_STATE)
    for table in (*VERSIONED, "observation"):
        op.execute(
            f"INSERT INTO table_version (table_name, version) VALUES ('{table}', 1) "
            "ON CONFLICT (table_name) DO NOTHING"
        )
    for table in VERSIONED:
        op.execute(
            f"CREATE TRIGGER trg_{table}_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION twin_bump_version()"
        )
    # inserts are bumped by the ingester once per batch; other writes by the trigger
    op.execute(
        "CREATE TRIGGER trg_observation_version AFTER UPDATE OR DELETE OR TRUNCATE "
        "ON observation FOR EACH STATEMENT EXECUTE FUNCTION twin_bump_version()"
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS sensor_state")
    op.execute(
        "DELETE FROM table_version WHERE table_name IN "
        "('thing', 'location', 'thing_location', 'datastream', 'alarm', 'observation')"
    )
    for table in ("gateway", "alarm", "rule", "observation", "datastream",
                  "feature_of_interest", "observed_property", "sensor",
                  "historical_location", "thing_location", "location", "thing"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP SEQUENCE IF EXISTS observation_id_seq")
    op.execute("DROP FUNCTION IF EXISTS twin_observation_partition(date)")
