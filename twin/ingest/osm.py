"""Import OpenStreetMap (.osm XML, .pbf) into the city model with pyosmium.

Roads become a noded, routable graph; buildings, facilities, power and land cover are
upserted on (``source='osm'``, ``source_id='way/123'``) so a re-import updates in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from twin.analysis.components import refresh_components
from twin.errors import InputError
from twin.ingest.common import (
    AREA_M2,
    LENGTH_M,
    address_of,
    clean_text,
    finish_import,
    line_wkb,
    parse_bool,
    parse_height,
    parse_int,
    parse_levels,
    parse_maxspeed,
    parse_voltage_kv,
    point_wkb,
    to_multipolygon,
    write_rows,
)
from twin.ingest.restrictions import Restriction, write_restrictions
from twin.ingest.roads import RoadLine, write_roads
from twin.ingest.summary import Summary
from twin.progress import Reporter

SOURCE = "osm"
KEYS = (
    "highway", "building", "amenity", "healthcare", "emergency", "power",
    "natural", "waterway", "landuse", "leisure", "office", "restriction",
)
POWER_NODE_KINDS = {
    "substation": "substation", "transformer": "transformer", "pole": "pole",
    "tower": "tower", "switch": "switch",
}
POWER_LINES = {"line": "line", "minor_line": "line", "cable": "cable"}
# amenity=shelter is mostly bus stops and picnic roofs: keep only real shelters.
NOT_SHELTERS = {"public_transport", "picnic_shelter", "lean_to", "basic_hut", "sun_shelter"}
BATCH = 5000

# Speeds (km/h) used when a road has no usable maxspeed: Vietnamese urban defaults.
DEFAULT_SPEED_KMH = {
    "motorway": 90, "motorway_link": 50, "trunk": 70, "trunk_link": 40,
    "primary": 50, "primary_link": 40, "secondary": 45, "secondary_link": 35,
    "tertiary": 40, "tertiary_link": 30, "unclassified": 30, "residential": 30,
    "road": 30, "living_street": 15, "service": 20, "track": 15,
    "pedestrian": 5, "footway": 5, "path": 5, "steps": 3, "cycleway": 15,
}
ROAD_CLASSES = frozenset(DEFAULT_SPEED_KMH)

FACILITY_VALUES = {
    "hospital": "hospital", "clinic": "clinic", "doctors": "clinic", "doctor": "clinic",
    "centre": "clinic", "pharmacy": "pharmacy", "chemist": "pharmacy",
    "police": "police", "fire_station": "fire_station", "school": "school",
    "kindergarten": "school", "college": "university", "university": "university",
    "marketplace": "market", "market": "market", "townhall": "government",
    "government": "government", "shelter": "shelter", "assembly_point": "shelter",
}


@dataclass
class _Read:
    """What one pass over the file collected (plain Python values only)."""

    roads: list[RoadLine] = field(default_factory=list)
    buildings: list[tuple[Any, ...]] = field(default_factory=list)
    facilities: list[tuple[Any, ...]] = field(default_factory=list)
    unodes: list[tuple[Any, ...]] = field(default_factory=list)
    uedges: list[tuple[Any, ...]] = field(default_factory=list)
    cover: list[tuple[Any, ...]] = field(default_factory=list)
    objects: int = 0
    closed_ways: set[int] = field(default_factory=set)
    area_ways: set[int] = field(default_factory=set)
    #: multipolygon relations we would keep (id → target table), and those assembled
    mp_relations: dict[int, str] = field(default_factory=dict)
    area_relations: set[int] = field(default_factory=set)
    restrictions: list[Restriction] = field(default_factory=list)
    wkb: Any = None  # an osmium.geom.WKBFactory


def import_osm(conn: Connection, path: Path, *, reporter: Reporter,
               prune: bool = False) -> Summary:
    """Import an OSM extract in the caller's transaction.

    Parameters
    ----------
    conn
        A connection inside a transaction; nothing is committed here.
    path
        ``.osm`` / ``.osm.bz2`` / ``.pbf`` file.
    reporter
        Progress sink.
    prune
        Delete the OSM objects an earlier import wrote that this file no longer holds
        (without it they are counted as ``gone`` and kept).

    Returns
    -------
    Summary
        Per-table inserted / updated / unchanged / repaired / skipped counts.

    Raises
    ------
    InputError
        The file is missing, unreadable, truncated or malformed (before any write).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"OSM file not found: {path}")
    summary = Summary(source=f"osm:{path.name}")
    data = _read(path, reporter, summary)
    if data.objects == 0:
        summary.notes.append("the file holds no roads, buildings or other usable objects")
    unassembled = len(data.closed_ways - data.area_ways)
    if unassembled:
        summary.skip("building", "closed way whose polygon could not be built", unassembled)
    for rid, table in sorted(data.mp_relations.items()):
        if rid not in data.area_relations:
            # e.g. the Hàn River: an extract cuts through its members, so no ring closes
            summary.skip(table, "multipolygon relation that could not be assembled "
                         "(members missing from the file or rings not closed)")
    task = reporter.task("writing to the database", total=6)
    write_roads(
        conn, data.roads, source=SOURCE, node_id=lambda ref: f"node/{ref}", summary=summary
    )
    write_restrictions(conn, data.restrictions, source=SOURCE, summary=summary)
    reporter.advance(task)
    write_rows(
        conn, "building",
        [("name", "text"), ("use", "text"), ("levels", "integer"), ("height_m", "float8"),
         ("address", "text"), ("geom", "bytea")],
        _checked(data.buildings, "building", summary), source=SOURCE, summary=summary,
        computed={"area_m2": AREA_M2},
    )
    reporter.advance(task)
    write_rows(
        conn, "facility",
        [("kind", "text"), ("name_vi", "text"), ("name_en", "text"), ("capacity", "integer"),
         ("address", "text"), ("phone", "text"), ("geom", "bytea")],
        data.facilities, source=SOURCE, summary=summary,
    )
    reporter.advance(task)
    write_rows(
        conn, "utility_node",
        [("network", "text"), ("kind", "text"), ("name", "text"), ("status", "text"),
         ("attrs", "jsonb"), ("geom", "bytea")],
        data.unodes, source=SOURCE, summary=summary,
    )
    reporter.advance(task)
    write_rows(
        conn, "utility_edge",
        [("network", "text"), ("kind", "text"), ("voltage_kv", "float8"), ("name", "text"),
         ("from_key", "text"), ("to_key", "text"), ("geom", "bytea")],
        data.uedges, source=SOURCE, summary=summary, stage_only=("from_key", "to_key"),
        computed={"length_m": LENGTH_M, "from_node": "fn.id", "to_node": "tn.id"},
        joins=(
            "LEFT JOIN utility_node fn ON fn.source = :source AND fn.source_id = s.from_key "
            "LEFT JOIN utility_node tn ON tn.source = :source AND tn.source_id = s.to_key"
        ),
    )
    reporter.advance(task)
    write_rows(
        conn, "land_cover", [("kind", "text"), ("name", "text"), ("geom", "bytea")],
        _checked(data.cover, "land_cover", summary), source=SOURCE, summary=summary,
    )
    reporter.advance(task)
    reporter.done(task)
    if finish_import(conn, summary, SOURCE, prune=prune) and summary.total("road_segment",
                                                                          "deleted"):
        summary.notes.append(refresh_components(conn).note())
    return summary


def speed_kmh(maxspeed: Any, road_class: str) -> float:
    """The ``maxspeed`` tag in km/h, else the default speed of the road class."""
    return parse_maxspeed(maxspeed) or float(DEFAULT_SPEED_KMH.get(road_class, 30))


def oneway_of(value: Any, road_class: str | None = None, junction: Any = None) -> int:
    """1 for one-way along the geometry, -1 for against it, 0 for two-way."""
    s = (clean_text(value) or "").lower()
    if s in ("-1", "reverse"):
        return -1
    if s in ("yes", "true", "1"):
        return 1
    if s in ("no", "false", "0"):
        return 0
    if road_class == "motorway" or clean_text(junction) in ("roundabout", "circular"):
        return 1
    return 0


def facility_kind(*values: Any) -> str | None:
    """Normalise amenity / healthcare / emergency / category values to a facility kind."""
    for v in values:
        s = (clean_text(v) or "").lower()
        if s in FACILITY_VALUES:
            return FACILITY_VALUES[s]
    return None


def land_cover_kind(tags: Mapping[str, Any]) -> str | None:
    """Normalise OSM natural / waterway / landuse / leisure tags to a land cover kind."""
    natural = (clean_text(tags.get("natural")) or "").lower()
    landuse = (clean_text(tags.get("landuse")) or "").lower()
    leisure = (clean_text(tags.get("leisure")) or "").lower()
    waterway = (clean_text(tags.get("waterway")) or "").lower()
    if natural == "water" or waterway in ("riverbank", "dock") or landuse in (
        "reservoir", "basin", "salt_pond", "aquaculture"
    ):
        return "water"
    if leisure in ("park", "garden"):
        return "park"
    if landuse in ("grass", "meadow", "recreation_ground", "village_green") or natural in (
        "grassland", "heath"
    ):
        return "grass"
    if landuse == "forest" or natural == "wood":
        return "forest"
    if natural in ("scrub", "wetland", "beach", "sand", "bare_rock"):
        return natural
    return landuse or None


def _read(path: Path, reporter: Reporter, summary: Summary) -> _Read:
    import osmium

    data = _Read(wkb=osmium.geom.WKBFactory())
    task = reporter.task(f"reading {path.name}")
    seen = 0
    try:
        fp = (
            osmium.FileProcessor(str(path))
            .with_locations()
            .with_areas()
            .with_filter(osmium.filter.KeyFilter(*KEYS))
        )
        for obj in fp:
            seen += 1
            if seen % BATCH == 0:
                reporter.advance(task, BATCH)
            if isinstance(obj, osmium.osm.Area):
                _area(obj, data, summary)
            elif isinstance(obj, osmium.osm.Node):
                _node(obj, data)
            elif isinstance(obj, osmium.osm.Way):
                _way(obj, data, summary)
            elif isinstance(obj, osmium.osm.Relation):
                _relation(obj, data)
    except RuntimeError as exc:
        # osmium reports malformed or truncated input (bad XML, bad PBF blobs) this way.
        raise InputError(f"cannot read OSM file {path.name}: {exc}") from exc
    reporter.advance(task, seen % BATCH)
    reporter.done(task)
    return data


def _facility(tags: dict[str, str]) -> str | None:
    amenity = tags.get("amenity")
    if amenity == "shelter" and tags.get("shelter_type") in NOT_SHELTERS:
        return None
    if tags.get("office") == "government":
        return "government"
    return facility_kind(amenity, tags.get("healthcare"), tags.get("emergency"))


def _facility_row(sid: str, kind: str, tags: dict[str, str], wkb: bytes) -> tuple[Any, ...]:
    capacity = parse_int(tags.get("beds")) or parse_int(tags.get("capacity"))
    return (
        sid, kind, clean_text(tags.get("name")), clean_text(tags.get("name:en")), capacity,
        address_of(tags.get("addr:housenumber"), tags.get("addr:street")),
        clean_text(tags.get("phone") or tags.get("contact:phone")), wkb,
    )


def _unode_row(sid: str, network: str, kind: str, tags: dict[str, str], wkb: bytes) -> tuple:
    from psycopg.types.json import Jsonb

    attrs = {k: tags[k] for k in ("operator", "voltage", "ref", "rating") if k in tags}
    return (sid, network, kind, clean_text(tags.get("name")), "in_service",
            Jsonb(attrs) if attrs else None, wkb)


def _node(node: Any, data: _Read) -> None:
    loc = node.location
    if not loc.valid():
        return
    tags = dict(node.tags)
    sid = f"node/{node.id}"
    wkb = point_wkb(loc.lon, loc.lat)
    kind = _facility(tags)
    if kind:
        data.facilities.append(_facility_row(sid, kind, tags, wkb))
        data.objects += 1
    pk = POWER_NODE_KINDS.get(tags.get("power", ""))
    if pk:
        data.unodes.append(_unode_row(sid, "power", pk, tags, wkb))
        data.objects += 1
    elif tags.get("emergency") == "fire_hydrant":
        data.unodes.append(_unode_row(sid, "water", "hydrant", tags, wkb))
        data.objects += 1


def _way(way: Any, data: _Read, summary: Summary) -> None:
    tags = way.tags
    if tags.get("building", "no") != "no" and way.is_closed() and len(way.nodes) > 3:
        data.closed_ways.add(way.id)
    highway = tags.get("highway")
    line_kind = POWER_LINES.get(tags.get("power", ""))
    if not line_kind and (highway not in ROAD_CLASSES or tags.get("area") == "yes"):
        return
    tags = dict(tags)
    refs = [(n.ref, n.location) for n in way.nodes]
    pts = [(ref, loc.lon, loc.lat) for ref, loc in refs if loc.valid()]
    if highway in ROAD_CLASSES and tags.get("area") != "yes":
        if len(pts) < 2:
            summary.skip("road_segment", "way with fewer than 2 located nodes")
            return
        data.roads.append(RoadLine(
            f"way/{way.id}", pts, highway, clean_text(tags.get("name")),
            clean_text(tags.get("name:en")), clean_text(tags.get("ref")),
            oneway_of(tags.get("oneway"), highway, tags.get("junction")),
            speed_kmh(tags.get("maxspeed"), highway), parse_int(tags.get("lanes")),
            parse_bool(tags.get("bridge")),
        ))
        data.objects += 1
    elif line_kind:
        if len(pts) < 2:
            summary.skip("utility_edge", "way with fewer than 2 located nodes")
            return
        data.uedges.append((
            f"way/{way.id}", "power", line_kind, parse_voltage_kv(tags.get("voltage")),
            clean_text(tags.get("name")), f"node/{pts[0][0]}", f"node/{pts[-1][0]}",
            line_wkb([(x, y) for _, x, y in pts]),
        ))
        data.objects += 1


def _restriction(rel: Any, tags: dict[str, str], data: _Read) -> None:
    kind = tags.get("restriction") or tags.get("restriction:motorcar") or ""
    if not kind.startswith(("no_", "only_")):
        return
    roles: dict[str, list[tuple[str, int]]] = {}
    for m in rel.members:
        roles.setdefault(m.role, []).append((m.type, int(m.ref)))
    frm, to, via = roles.get("from", []), roles.get("to", []), roles.get("via", [])
    if len(frm) != 1 or len(to) != 1 or len(via) != 1 or frm[0][0] != "w" or to[0][0] != "w":
        return
    vtype, vref = via[0]
    data.restrictions.append(Restriction(
        int(rel.id), kind, frm[0][1], to[0][1], vref if vtype == "n" else None,
        vref if vtype == "w" else None))


def _relation(rel: Any, data: _Read) -> None:
    tags = dict(rel.tags)
    if tags.get("type") == "restriction":
        _restriction(rel, tags, data)
        return
    if tags.get("type") not in ("multipolygon", "boundary") or tags.get("building") == "no":
        return
    if "building" in tags:
        data.mp_relations[rel.id] = "building"
    elif land_cover_kind(tags):
        data.mp_relations[rel.id] = "land_cover"
    elif _facility(tags):
        data.mp_relations[rel.id] = "facility"


def _area(area: Any, data: _Read, summary: Summary) -> None:
    tags = dict(area.tags)
    if tags.get("building") == "no":
        del tags["building"]
    kind = _facility(tags)
    substation = tags.get("power") == "substation"
    cover = None if "building" in tags else land_cover_kind(tags)
    if "building" not in tags and not kind and not substation and not cover:
        return
    sid = f"{'way' if area.from_way() else 'relation'}/{area.orig_id()}"
    if area.from_way():
        data.area_ways.add(area.orig_id())
    else:
        data.area_relations.add(area.orig_id())
    try:
        wkb = bytes.fromhex(data.wkb.create_multipolygon(area))
    except RuntimeError:
        table = "building" if "building" in tags else "land_cover" if cover else "facility"
        summary.skip(table, "area geometry could not be built")
        return
    data.objects += 1
    if "building" in tags:
        use = tags["building"]
        if use == "yes" and tags.get("amenity"):
            use = tags["amenity"]
        data.buildings.append((
            sid, clean_text(tags.get("name")), use,
            parse_levels(tags.get("building:levels")), parse_height(tags.get("height")),
            address_of(tags.get("addr:housenumber"), tags.get("addr:street")), wkb,
        ))
    elif cover:
        data.cover.append((sid, cover, clean_text(tags.get("name")), wkb))
    if kind or substation:
        import shapely

        mp, _ = to_multipolygon(shapely.from_wkb(wkb))
        if mp is None:
            return
        point = shapely.to_wkb(shapely.point_on_surface(mp))
        if kind:
            data.facilities.append(_facility_row(sid, kind, tags, point))
        if substation:
            data.unodes.append(_unode_row(sid, "power", "substation", tags, point))


def _checked(rows: list[tuple[Any, ...]], table: str, summary: Summary) -> list[tuple[Any, ...]]:
    """Rows whose last item is polygon WKB, with invalid polygons repaired (counted) and
    rows without any polygon left skipped. Validity is tested for all rows at once."""
    import numpy as np
    import shapely

    if not rows:
        return rows
    geoms = shapely.from_wkb([r[-1] for r in rows])
    bad = np.flatnonzero(~shapely.is_valid(geoms))
    drop = set()
    for i in bad:
        mp, _ = to_multipolygon(geoms[i])
        if mp is None:
            summary.skip(table, "no polygon left after repair")
            drop.add(i)
        else:
            rows[i] = (*rows[i][:-1], shapely.to_wkb(mp))
            summary.add(table, "repaired")
    return [r for i, r in enumerate(rows) if i not in drop] if drop else rows
