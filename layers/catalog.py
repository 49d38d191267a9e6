"""The layer catalogue: ``data/layers.yaml`` → typed, validated :class:`Layer` objects."""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, text

from layers.access import can_see
from layers.errors import CatalogError, LayerNotFound

_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

PropType = Literal["string", "integer", "number", "boolean", "date", "datetime"]


class Title(BaseModel):
    model_config = ConfigDict(frozen=True)
    vi: str
    en: str


class Property(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    column: str | None = None
    type: PropType = "string"
    title: Title | None = None

    @field_validator("name", "column")
    @classmethod
    def _ident(cls, v: str | None) -> str | None:
        if v is not None and not IDENT.match(v):
            raise ValueError(f"{v!r} is not a plain lower-case identifier")
        return v

    @property
    def col(self) -> str:
        return self.column or self.name


class Layer(BaseModel):
    """A published layer: its source, geometry, exposed properties, zooms and access."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: Title
    description: str = ""
    table: str
    where: str | None = None
    id_column: str = "id"
    geometry_column: str = "geom"
    geometry_3857_column: str = "geom_3857"
    geometry_type: str = "Geometry"
    properties: tuple[Property, ...] = ()
    minzoom: int = Field(default=0, ge=0, le=24)
    maxzoom: int = Field(default=22, ge=0, le=24)
    zoom_filters: dict[int, str] = Field(default_factory=dict)
    simplify: dict[int, float] = Field(default_factory=dict)
    max_features_per_tile: int = Field(default=20000, gt=0)
    generalised_table: str | None = None
    """A table of generalised geometry (same property columns, ``fid``, ``cell`` and
    ``geom_3857``) the layer's tiles read up to ``generalised_maxzoom``
    (:mod:`layers.generalise`)."""
    generalised_maxzoom: int = Field(default=14, ge=0, le=24)
    generalised_z14_table: str | None = None
    """The generalised rows' stored z14 tile geometry (``tile`` = x × 16384 + y, ``cell``,
    ``fid``, the property columns and ``geom`` in tile units), which a z14 tile reads
    instead of running ``ST_AsMVTGeom`` on each block (migration 0017)."""
    access: Literal["public", "staff", "restricted"] = "public"
    time_field: str | None = None
    time_end_field: str | None = None
    live: bool = False
    cache_seconds: int = 60
    basemap: bool = False
    depends_on: tuple[str, ...] = ()
    style: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_]*$", v):
            raise ValueError(f"layer id {v!r}: lower case letters, digits and _ only (no dots)")
        return v

    @field_validator("table", "id_column", "geometry_column", "geometry_3857_column")
    @classmethod
    def _ident(cls, v: str) -> str:
        if not IDENT.match(v):
            raise ValueError(f"{v!r} is not a plain lower-case identifier")
        return v

    @cached_property
    def property_map(self) -> dict[str, Property]:
        return {p.name: p for p in self.properties}

    @property
    def tables(self) -> tuple[str, ...]:
        """Tables whose writes change this layer (its version and cache)."""
        return (self.table, *self.depends_on)

    def zoom_filter(self, z: int) -> str | None:
        """The generalisation filter for zoom ``z`` (the band starting at or below z)."""
        bands = [k for k in self.zoom_filters if k <= z]
        return self.zoom_filters[max(bands)] if bands else None

    def simplify_px(self, z: int) -> float:
        bands = [k for k in self.simplify if k <= z]
        return float(self.simplify[max(bands)]) if bands else 0.0

    def visible_to(self, role: str | None) -> bool:
        return can_see(role, self.access)


class Catalog:
    """The layers, in file order, with lookups that honour access levels."""

    def __init__(self, layers: list[Layer]):
        self._layers = {lyr.id: lyr for lyr in layers}
        if len(self._layers) != len(layers):
            raise CatalogError("duplicate layer ids in the catalogue")

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._layers.values())

    def __len__(self) -> int:
        return len(self._layers)

    def all(self) -> list[Layer]:
        return list(self._layers.values())

    def visible(self, role: str | None) -> list[Layer]:
        return [lyr for lyr in self._layers.values() if lyr.visible_to(role)]

    def get(self, layer_id: str, role: str | None = "admin") -> Layer:
        """The layer, or :class:`LayerNotFound` (also when the role may not see it)."""
        lyr = self._layers.get(layer_id)
        if lyr is None or not lyr.visible_to(role):
            raise LayerNotFound(f"collection {layer_id!r} not found")
        return lyr

    def by_table(self, table: str) -> list[Layer]:
        return [lyr for lyr in self._layers.values() if table in lyr.tables]


def _expand(text_: str) -> str:
    return _VAR.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), text_)


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalogue file; :class:`CatalogError` says what is wrong."""
    try:
        raw = yaml.safe_load(_expand(Path(path).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"cannot read layer catalogue {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("layers"), list):
        raise CatalogError(f"{path}: expected a mapping with a 'layers' list")
    layers = []
    for i, item in enumerate(raw["layers"]):
        try:
            layers.append(Layer.model_validate(item))
        except ValidationError as exc:
            lid = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
            raise CatalogError(f"{path}: layer {lid}: {exc}") from exc
    return Catalog(layers)


def check_catalog(conn: Connection, catalog: Catalog) -> list[str]:
    """Problems found validating the catalogue against the database (empty = fine)."""
    problems: list[str] = []
    for lyr in catalog:
        cols = {
            r[0]: r[1]
            for r in conn.execute(
                text(
                    "SELECT column_name, udt_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = :t"
                ),
                {"t": lyr.table},
            )
        }
        if not cols:
            problems.append(f"{lyr.id}: table or view {lyr.table!r} not found")
            continue
        needed = [lyr.id_column, lyr.geometry_column, lyr.geometry_3857_column]
        needed += [p.col for p in lyr.properties]
        needed += [c for c in (lyr.time_field, lyr.time_end_field) if c]
        for col in needed:
            if col not in cols:
                problems.append(f"{lyr.id}: column {col!r} not in {lyr.table}")
        for clause in [lyr.where, *lyr.zoom_filters.values()]:
            if not clause:
                continue
            try:
                with conn.begin_nested():
                    conn.execute(text(f"SELECT 1 FROM {lyr.table} WHERE {clause} LIMIT 0"))
            except Exception as exc:  # noqa: BLE001 - report the database's message
                problems.append(f"{lyr.id}: filter {clause!r} fails: {exc.__class__.__name__}")
        if lyr.minzoom > lyr.maxzoom:
            problems.append(f"{lyr.id}: minzoom {lyr.minzoom} > maxzoom {lyr.maxzoom}")
        if lyr.generalised_table:
            gen = set(conn.execute(text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = :t"),
                {"t": lyr.generalised_table}).scalars())
            for col in ["fid", "cell", "geom_3857", *(p.col for p in lyr.properties)]:
                if col not in gen:
                    problems.append(f"{lyr.id}: column {col!r} not in generalised table "
                                    f"{lyr.generalised_table!r}")
        if lyr.generalised_z14_table:
            z14 = set(conn.execute(text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = :t"),
                {"t": lyr.generalised_z14_table}).scalars())
            for col in ["tile", "fid", "cell", "geom", *(p.col for p in lyr.properties)]:
                if col not in z14 and col != lyr.id_column:
                    problems.append(f"{lyr.id}: column {col!r} not in z14 table "
                                    f"{lyr.generalised_z14_table!r}")
    return problems


def layer_versions(conn: Connection) -> dict[str, int]:
    """Current version of every versioned table (bumped by a trigger on each write)."""
    rows = conn.execute(text("SELECT table_name, version FROM table_version"))
    return {r[0]: int(r[1]) for r in rows}
