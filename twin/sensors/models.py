"""SensorThings API entities in PostGIS (EPSG:4326), declared on :class:`twin.models.Base`.

``observation`` is range-partitioned by month on ``phenomenon_time`` (with a default
partition), so its primary key is ``(datastream_id, phenomenon_time)``: one
observation per datastream and instant, which makes every resend a no-op
(``ON CONFLICT DO NOTHING``). The partitioning itself is written by hand in migration
0004; this module only mirrors the columns for readers and tools.
"""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from twin.models import Base

RULE_KINDS = ("above", "below", "rate", "no_signal")
THING_KINDS = (
    "flood_tower", "rain_gauge", "water_level", "water_quality", "air_quality",
    "traffic_counter", "street_light", "weather",
)


def _now() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Thing(Base):
    __tablename__ = "thing"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    kind: Mapped[str | None] = mapped_column(Text, index=True)
    public: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    properties: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    created_at: Mapped[dt.datetime] = _now()


class Location(Base):
    __tablename__ = "location"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    encoding_type: Mapped[str] = mapped_column(Text, nullable=False)
    properties: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False)


class ThingLocation(Base):
    """The current Location(s) of a Thing."""

    __tablename__ = "thing_location"

    thing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("thing.id", ondelete="CASCADE"), primary_key=True
    )
    location_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("location.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class HistoricalLocation(Base):
    """When a Thing was at a Location (one row per location of a move)."""

    __tablename__ = "historical_location"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    thing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("thing.id", ondelete="CASCADE"), nullable=False, index=True
    )
    location_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("location.id", ondelete="SET NULL"), index=True
    )
    time: Mapped[dt.datetime] = _now()


class Sensor(Base):
    __tablename__ = "sensor"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    encoding_type: Mapped[str] = mapped_column(Text, nullable=False)
    metadata_: Mapped[str] = mapped_column("metadata", Text, nullable=False, default="")
    properties: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]


class ObservedProperty(Base):
    __tablename__ = "observed_property"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    definition: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    properties: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]


class FeatureOfInterest(Base):
    __tablename__ = "feature_of_interest"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    encoding_type: Mapped[str] = mapped_column(Text, nullable=False)
    properties: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False)


class Datastream(Base):
    """Observations of one ObservedProperty by one Sensor on one Thing (its phenomenon
    time and newest reading are read from ``observation``'s primary key index)."""

    __tablename__ = "datastream"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    unit_of_measurement: Mapped[dict] = mapped_column(JSONB, nullable=False)  # type: ignore[type-arg]
    observation_type: Mapped[str] = mapped_column(Text, nullable=False)
    properties: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    thing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("thing.id", ondelete="CASCADE"), nullable=False, index=True
    )
    sensor_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("sensor.id"), nullable=False, index=True
    )
    observed_property_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("observed_property.id"), nullable=False, index=True
    )
    default_foi_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("feature_of_interest.id", ondelete="SET NULL")
    )
    is_primary: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    no_signal_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=60)
    observed_area = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False))


class Observation(Base):
    """One reading. Partitioned by month on ``phenomenon_time`` (see the migration)."""

    __tablename__ = "observation"
    __table_args__ = (
        PrimaryKeyConstraint("datastream_id", "phenomenon_time"),
        {"postgresql_partition_by": "RANGE (phenomenon_time)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    datastream_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    phenomenon_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    phenomenon_time_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    result_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[float | None] = mapped_column(Float)
    result_json: Mapped[object | None] = mapped_column(JSONB)
    quality: Mapped[object | None] = mapped_column(JSONB)
    parameters: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    foi_id: Mapped[int | None] = mapped_column(BigInteger)


Index(
    "ix_observation_phenomenon_time_brin", Observation.phenomenon_time, postgresql_using="brin"
)


class Rule(Base):
    """A condition on one datastream that raises an alarm (see ``twin.sensors.rules``)."""

    __tablename__ = "rule"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('above', 'below', 'rate', 'no_signal')", name="kind_known"
        ),
        CheckConstraint("severity BETWEEN 1 AND 5", name="severity_1_5"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    datastream_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("datastream.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    threshold: Mapped[float | None] = mapped_column(Float)
    clear_threshold: Mapped[float | None] = mapped_column(Float)
    window_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=900)
    hold_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    clear_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                               server_default="0")
    name_i18n: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    no_signal_minutes: Mapped[int | None] = mapped_column(Integer)
    severity: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    opens_incident: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    incident_category: Mapped[str] = mapped_column(Text, nullable=False, default="flood")
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[dt.datetime] = _now()


class Alarm(Base):
    """A firing rule. At most one uncleared alarm per rule and datastream (partial
    unique index); repeats bump ``occurrences`` instead of flooding the console."""

    __tablename__ = "alarm"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("rule.id", ondelete="CASCADE"), nullable=False, index=True
    )
    datastream_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("datastream.id", ondelete="CASCADE"), nullable=False
    )
    thing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("thing.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    severity: Mapped[int] = mapped_column(Integer, nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    message_i18n: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    notified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    value: Mapped[float | None] = mapped_column(Float)
    raised_at: Mapped[dt.datetime] = _now()
    last_seen_at: Mapped[dt.datetime] = _now()
    occurrences: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    cleared_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    cleared_by: Mapped[str | None] = mapped_column(Text)
    assignee: Mapped[str | None] = mapped_column(Text)
    incident_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("incident.id", ondelete="SET NULL")
    )


Index(
    "uq_alarm_open_per_rule",
    Alarm.rule_id,
    Alarm.datastream_id,
    unique=True,
    postgresql_where=Alarm.cleared_at.is_(None),
)


class Gateway(Base):
    """A sensor gateway and its API key (only a SHA-256 of the key is stored)."""

    __tablename__ = "gateway"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    key_hash: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    key_prefix: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[dt.datetime] = _now()
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
