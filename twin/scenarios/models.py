"""The ``scenario`` table: one stored what-if run (flood, closure or outage)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Text,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from twin.models import Base

KINDS = ("flood", "closure", "outage", "rain", "river")
#: kinds that store a water-depth grid (depth COG, flooded outline, affected assets)
DEPTH_KINDS = ("flood", "rain", "river")


class Scenario(Base):
    """A stored scenario.

    ``params`` holds what was asked, ``result`` the summary that was answered; ``geom``
    (EPSG:4326, nullable) is the flooded area of a flood; ``raster_path`` the depth COG
    (metres) written under ``settings.terrain_dir / 'scenarios'``; ``incident_id`` the
    incident a flood was run for (the /ops flood layer).
    """

    __tablename__ = "scenario"
    __table_args__ = (
        CheckConstraint("kind IN ('flood', 'closure', 'outage', 'rain', 'river')",
                        name="kind_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    name: Mapped[str | None] = mapped_column(Text)
    #: a note by its author (PATCH /scenarios/{id})
    description: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )
    created_by: Mapped[str | None] = mapped_column(Text, index=True)
    public: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    raster_path: Mapped[str | None] = mapped_column(Text)
    incident_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("incident.id", ondelete="SET NULL"), index=True
    )
    geom = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=True
    )
    geom_3857 = mapped_column(
        Geometry("MULTIPOLYGON", srid=3857, spatial_index=True),
        Computed("ST_Transform(geom, 3857)", persisted=True),
    )
