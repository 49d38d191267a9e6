"""The city model (GeoAlchemy2). Geometry is stored in EPSG:4326; hot layers carry a
generated EPSG:3857 copy (``geom_3857``) so tiles never transform rows at request time.

Every feature row keeps ``source`` and ``source_id`` (unique together) so a re-import
updates in place.
"""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NETWORKS = ("water", "drainage", "sewer", "power")
NODE_KINDS = (
    "valve", "hydrant", "pump", "tank", "plant", "junction", "meter",
    "transformer", "substation", "switch", "pole", "tower",
    "outfall", "manhole", "inlet",
)
FACILITY_KINDS = (
    "hospital", "clinic", "fire_station", "police", "shelter", "school",
    "university", "pharmacy", "market", "government",
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _geom(kind: str, srid: int = 4326, nullable: bool = False) -> Mapped:  # type: ignore[type-arg]
    return mapped_column(
        Geometry(kind, srid=srid, spatial_index=True), nullable=nullable
    )


def _geom3857(kind: str) -> Mapped:  # type: ignore[type-arg]
    return mapped_column(
        Geometry(kind, srid=3857, spatial_index=True),
        Computed("ST_Transform(geom, 3857)", persisted=True),
    )


class Sourced:
    """Provenance columns shared by every imported table."""

    source: Mapped[str] = mapped_column(Text, nullable=False)
    source_id: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class AdminArea(Sourced, Base):
    """Wards, communes and (historic) districts, with their validity period."""

    __tablename__ = "admin_area"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[str] = mapped_column(Text, nullable=False)  # city | district | ward | commune
    code: Mapped[str | None] = mapped_column(Text)
    name_vi: Mapped[str] = mapped_column(Text, nullable=False)
    name_en: Mapped[str | None] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(Text)
    population: Mapped[int | None] = mapped_column(Integer)
    area_km2: Mapped[float | None] = mapped_column(Float)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    geom = _geom("MULTIPOLYGON")
    geom_3857 = _geom3857("MULTIPOLYGON")


class AdminLineage(Base):
    """Which old unit became which new one on ``changed_on`` (the 2025 merge), with the
    share of the old unit it took (1 for a whole ward, an area share for a district)."""

    __tablename__ = "admin_lineage"
    __table_args__ = (UniqueConstraint("old_code", "new_code", "changed_on"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    old_code: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    old_name_vi: Mapped[str] = mapped_column(Text, nullable=False)
    old_level: Mapped[str] = mapped_column(Text, nullable=False)
    old_parent_code: Mapped[str | None] = mapped_column(Text)
    new_code: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    new_name_vi: Mapped[str] = mapped_column(Text, nullable=False)
    new_level: Mapped[str] = mapped_column(Text, nullable=False)
    changed_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    share: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class RoadRestriction(Base):
    """A turn restriction: a sequence of road segments a drive may not take (``path``),
    from an OSM ``type=restriction`` relation; ``geom`` is its via point."""

    __tablename__ = "road_restriction"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    source_id: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    path: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False)
    geom = _geom("POINT", nullable=True)


class RoadNode(Sourced, Base):
    """A node of the road graph. ``component`` / ``component_size``: its connected
    component on the undirected graph (the smallest node id in it) and how many nodes
    that holds, refreshed after every road write (``twin.analysis.components``); routing
    snaps points to nodes of large components."""

    __tablename__ = "road_node"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    component: Mapped[int | None] = mapped_column(BigInteger)
    component_size: Mapped[int | None] = mapped_column(Integer, index=True)
    geom = _geom("POINT")


class RoadSegment(Sourced, Base):
    """A routable edge. pgRouting reads ``from_node AS source, to_node AS target``;
    ``cost`` / ``reverse_cost`` are travel times in seconds (reverse −1 when one-way)."""

    __tablename__ = "road_segment"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    from_node: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("road_node.id", ondelete="CASCADE"), index=True
    )
    to_node: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("road_node.id", ondelete="CASCADE"), index=True
    )
    road_class: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    name: Mapped[str | None] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(Text)
    oneway: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    maxspeed_kmh: Mapped[float] = mapped_column(Float, nullable=False)
    lanes: Mapped[int | None] = mapped_column(Integer)
    bridge: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    length_m: Mapped[float] = mapped_column(Float, nullable=False)
    cost: Mapped[float] = mapped_column(Float, nullable=False)
    reverse_cost: Mapped[float] = mapped_column(Float, nullable=False)
    geom = _geom("LINESTRING")
    geom_3857 = _geom3857("LINESTRING")


class Building(Sourced, Base):
    __tablename__ = "building"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    use: Mapped[str] = mapped_column(Text, nullable=False, default="yes")
    levels: Mapped[int | None] = mapped_column(Integer)
    height_m: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(Text)
    ward: Mapped[str | None] = mapped_column(Text)
    population: Mapped[int | None] = mapped_column(Integer)
    area_m2: Mapped[float | None] = mapped_column(Float)
    geom = _geom("MULTIPOLYGON")
    geom_3857 = _geom3857("MULTIPOLYGON")


class UtilityNode(Sourced, Base):
    __tablename__ = "utility_node"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    network: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, nullable=False, default="in_service")
    attrs: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    geom = _geom("POINT")
    geom_3857 = _geom3857("POINT")


class UtilityEdge(Sourced, Base):
    """A pipe, cable or canal between two utility nodes of one network."""

    __tablename__ = "utility_edge"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    network: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)  # main | pipe | cable | line | canal
    from_node: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("utility_node.id", ondelete="CASCADE"), index=True
    )
    to_node: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("utility_node.id", ondelete="CASCADE"), index=True
    )
    diameter_mm: Mapped[float | None] = mapped_column(Float)
    voltage_kv: Mapped[float | None] = mapped_column(Float)
    length_m: Mapped[float | None] = mapped_column(Float)
    name: Mapped[str | None] = mapped_column(Text)
    geom = _geom("LINESTRING")
    geom_3857 = _geom3857("LINESTRING")


class UtilityService(Sourced, Base):
    """The service link of a building to a utility network (which edge feeds it)."""

    __tablename__ = "utility_service"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    network: Mapped[str] = mapped_column(Text, nullable=False)
    building_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("building.id", ondelete="CASCADE"), index=True
    )
    edge_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("utility_edge.id", ondelete="CASCADE"), index=True
    )


class Facility(Sourced, Base):
    __tablename__ = "facility"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    name_vi: Mapped[str | None] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    capacity: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    geom = _geom("POINT")
    geom_3857 = _geom3857("POINT")


class LandCover(Sourced, Base):
    """Water, parks, forest and land use polygons for the basemap."""

    __tablename__ = "land_cover"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    name: Mapped[str | None] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")
    geom_3857 = _geom3857("MULTIPOLYGON")


class Place(Sourced, Base):
    """Named places for labels and search: landmarks, neighbourhoods, bridges."""

    __tablename__ = "place"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    name_vi: Mapped[str] = mapped_column(Text, nullable=False)
    name_en: Mapped[str | None] = mapped_column(Text)
    rank: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    geom = _geom("POINT")
    geom_3857 = _geom3857("POINT")


class Terrain(Sourced, Base):
    """A registered raster (a COG on disk)."""

    __tablename__ = "terrain"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False, default="dem")
    path: Mapped[str] = mapped_column(Text, nullable=False)
    crs: Mapped[str] = mapped_column(Text, nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    res_x: Mapped[float] = mapped_column(Float, nullable=False)
    res_y: Mapped[float] = mapped_column(Float, nullable=False)
    nodata: Mapped[float | None] = mapped_column(Float)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    geom = _geom("POLYGON")  # footprint in EPSG:4326


class AppUser(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class TableVersion(Base):
    """Bumped by a statement trigger on every write to a feature table: the basis of
    tile ETags and cache invalidation (a write made by any process changes it)."""

    __tablename__ = "table_version"

    table_name: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    changed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


VERSIONED_TABLES = (
    "admin_area", "road_node", "road_segment", "building", "utility_node", "utility_edge",
    "utility_service", "facility", "land_cover", "place", "terrain",
)

Index("ix_building_ward", Building.ward)


class Incident(Base):
    """An incident through its lifecycle (see ``twin.incidents``). Reporter contact
    fields are private: only staff answers ever carry them."""

    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    category: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    subcategory: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    status: Mapped[str] = mapped_column(Text, nullable=False, default="reported", index=True)
    close_reason: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    ward: Mapped[str | None] = mapped_column(Text)
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_email: Mapped[str | None] = mapped_column(Text)
    reporter_phone: Mapped[str | None] = mapped_column(Text)
    reporter_device: Mapped[str | None] = mapped_column(Text)
    media_url: Mapped[str | None] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    assigned_units: Mapped[list | None] = mapped_column(JSONB)  # type: ignore[type-arg]
    channel: Mapped[str] = mapped_column(Text, nullable=False, default="staff")
    token: Mapped[str | None] = mapped_column(Text, unique=True)
    linked_to: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("incident.id", ondelete="SET NULL"), index=True
    )
    cap_published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cap_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    sla_due: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    geom = _geom("GEOMETRY")
    geom_3857 = _geom3857("GEOMETRY")


class IncidentEvent(Base):
    """The append-only timeline of an incident (a trigger refuses UPDATE and DELETE).
    Its id is also the live stream's event id (Last-Event-ID replays from it)."""

    __tablename__ = "incident_event"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("incident.id"), nullable=False, index=True
    )
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict | None] = mapped_column(JSONB)  # type: ignore[type-arg]
