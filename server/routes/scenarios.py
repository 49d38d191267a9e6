"""What-if scenarios for staff: a flood at a water level, road closures, utility
outages; stored so they can be reopened and compared."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from server.deps import ConnDep, SettingsDep, StaffDep
from twin.bounds import MAX_BIGINT, check_point
from twin.errors import InputError
from twin.scenarios import closure, outage, store
from twin.scenarios.flood_scenario import FloodParams, flood_features, run_flood

router = APIRouter(prefix="/scenarios", tags=["scenarios"])

Include = Annotated[str | None, Query(max_length=200,
                                      description="comma list: features, geometry")]
Id = Annotated[int, Field(ge=1, le=MAX_BIGINT)]
PathId = Annotated[int, Path(ge=1, le=MAX_BIGINT)]
QueryId = Annotated[int, Query(ge=1, le=MAX_BIGINT)]
Name = Annotated[str, Field(max_length=100)]
Points = Annotated[list[list[float]], Field(max_length=100)]


class _In(BaseModel):
    # finite numbers only: inf/NaN levels or coordinates are refused (422), not stored
    model_config = ConfigDict(allow_inf_nan=False)


def _check_points(points: list[list[float]] | None, what: str) -> None:
    """[lon, lat] pairs inside the city (400 otherwise, as the domain's own checks)."""
    for p in points or ():
        if len(p) != 2:
            raise InputError(f"{what}: each point is [lon, lat]")
        check_point(p[0], p[1], what)


class FloodIn(_In):
    water_level_m: float | None = Field(
        default=None, description="water surface, metres above mean sea level (0…1000); "
        "for an incident, default: the water level its flood-tower alarm read")
    rise_m: float | None = Field(
        default=None, description="or a rise over the reference: the sea (0 m), or the "
        "lowest ground under the seeds")
    seeds: Points | None = Field(
        default=None, description="source points [[lon, lat], …]; default: the sea, or "
        "the incident's location")
    dem: str | None = Field(default=None, max_length=200,
                            description="registered DEM (default: the newest)")
    impassable_depth_m: float = Field(default=0.3, description="roads deeper are impassable")
    name: Name | None = None
    save: bool = True
    public: bool = Field(default=False, description="depth tiles visible to everyone")
    incident_id: Id | None = Field(
        default=None, description="the flood incident this scenario is run for (the /ops "
        "flood layer); seeds and level default from it")


class ClosureIn(_In):
    segment_ids: list[Id] | None = Field(default=None, max_length=5000,
                                         description="road segments to close")
    scenario_id: Id | None = Field(
        default=None, description="or a flood scenario: close its impassable roads")
    origin: list[float] | None = Field(
        default=None, min_length=2, max_length=2,
        description="[lon, lat] the nearest hospitals and fire station are timed from, "
        "before and after (default: the midpoint of the first closed segment)")
    points: Points | None = Field(
        default=None, description="[[lon, lat], …] to compare drive times from (default: "
        "ends of the closed segments)")
    samples: int = Field(default=4, ge=0, le=20,
                         description="sample points when none are given (0: none)")
    name: Name | None = None
    save: bool = True


class ScenarioPatch(_In):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str | None, Field(default=None, min_length=1, max_length=100)] = None
    description: Annotated[str | None, Field(default=None, max_length=2000,
                                             description="empty string: no description")] = None


def _may_edit(conn: Any, scenario_id: int, who: Any) -> None:
    """The author or an admin may rename or delete a scenario; other staff read it."""
    row = store.get_row(conn, scenario_id)
    if who.role != "admin" and row["created_by"] != who.username:
        raise HTTPException(403, "only the scenario's author or an admin may change it")


class OutageIn(_In):
    edge_id: Id | None = Field(default=None, description="a burst main or cut cable")
    node_id: Id | None = Field(default=None, description="a failed transformer or device")
    name: Name | None = None
    save: bool = True


def _include(value: str | None) -> set[str]:
    parts = {p.strip() for p in (value or "").split(",") if p.strip()}
    unknown = parts - {"features", "geometry"}
    if unknown:
        raise InputError(f"include takes features and/or geometry, not {', '.join(unknown)}")
    return parts


def _created(answer: dict[str, Any], response: Response) -> dict[str, Any]:
    if answer.get("id") is not None:
        response.status_code = 201
        response.headers["Location"] = f"/scenarios/{answer['id']}"
    return answer


@router.post("/flood", status_code=200)
def flood(
    body: FloodIn, conn: ConnDep, settings: SettingsDep, who: StaffDep, response: Response,
    include: Include = None,
) -> dict[str, Any]:
    """Flood the DEM to a water level from the sea (or seed points) and report what is
    affected: flooded area, buildings, roads (impassable above a depth), facilities,
    people. Depth tiles: ``links.tiles``. With ``incident_id`` (a flood incident) the
    water starts at the incident and, unless given, rises to its flood-tower reading."""
    inc = _include(include)
    seeds = tuple(tuple(s) for s in body.seeds) if body.seeds is not None else None
    _check_points(body.seeds, "seeds")
    params = FloodParams(
        water_level_m=body.water_level_m, rise_m=body.rise_m,
        seeds=seeds,  # type: ignore[arg-type]
        dem=body.dem, impassable_depth_m=body.impassable_depth_m, name=body.name,
        incident_id=body.incident_id,
    )
    with conn.begin():
        answer = run_flood(conn, settings, params, created_by=who.username, save=body.save,
                           public=body.public, features="features" in inc)
        if "geometry" in inc and answer.get("id") is not None:
            answer["geometry"] = store.get(conn, answer["id"])["geometry"]
    return _created(answer, response)


@router.post("/closure", status_code=200)
def close_roads(
    body: ClosureIn, conn: ConnDep, who: StaffDep, response: Response
) -> dict[str, Any]:
    """Close road segments (or a flood's impassable roads): what is cut off, which
    buildings lose access to a hospital, drive times to hospitals and fire stations
    before and after. ``features`` is GeoJSON for the map."""
    _check_points(body.points, "points")
    _check_points([body.origin] if body.origin is not None else None, "origin")
    with conn.begin():
        answer = closure.run_closure(
            conn, segment_ids=body.segment_ids, scenario_id=body.scenario_id,
            origin=body.origin, points=body.points, samples=body.samples, name=body.name,
            created_by=who.username, save=body.save,
        )
    return _created(answer, response)


@router.post("/outage", status_code=200)
def utility_outage(
    body: OutageIn, conn: ConnDep, who: StaffDep, response: Response
) -> dict[str, Any]:
    """A burst main or failed device: the valves or switches that isolate it, the
    isolated section, and the buildings that lose service."""
    with conn.begin():
        answer = outage.run_outage(conn, edge_id=body.edge_id, node_id=body.node_id,
                                   name=body.name, created_by=who.username, save=body.save)
    return _created(answer, response)


@router.get("")
def list_scenarios(
    conn: ConnDep,
    who: StaffDep,
    kind: Annotated[str | None, Query(max_length=100, description="a kind or comma list")] = None,
    incident_id: QueryId | None = None,
    author: Annotated[str | None, Query(max_length=100, description="created by")] = None,
    q: Annotated[str | None, Query(max_length=100, description="text in the name")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Stored scenarios, newest first (name, kind, parameters, author, date, summary and
    its ``headline`` in vi/en; no geometry), filtered by ``kind``, ``author`` and ``q`` in
    the name, paged by ``limit``/``offset`` (``total`` counts all matches);
    ``incident_id`` gives the scenarios run for an incident (the /ops flood layer; 404
    for an unknown incident)."""
    return store.list_(conn, kind, limit, offset, incident_id, author=author or None,
                       q=q or None)


@router.get("/compare")
def compare(
    conn: ConnDep, who: StaffDep, a: QueryId, b: QueryId
) -> dict[str, Any]:
    """Two scenarios side by side: ``table`` has per metric a, b and b − a with its unit
    and labels in vi/en; also each figure with its change, the buildings affected in only
    one, and for two floods the area flooded in only one. Floods (flood, rain, river)
    compare with each other, closures with closures, outages with outages; other pairs
    answer 400."""
    return store.compare(conn, a, b)


@router.get("/{scenario_id}")
def get_scenario(
    scenario_id: PathId, conn: ConnDep, settings: SettingsDep, who: StaffDep,
    include: Include = None,
) -> dict[str, Any]:
    """A stored scenario with its summary and, for a flood, the flooded area (GeoJSON
    MultiPolygon); ``include=features`` adds the affected buildings and roads."""
    inc = _include(include)
    answer = store.get(conn, scenario_id)
    if "features" in inc and answer["kind"] in ("flood", "rain"):
        answer["features"] = flood_features(conn, settings, scenario_id)
    return answer


@router.patch("/{scenario_id}")
def edit_scenario(
    scenario_id: PathId, body: ScenarioPatch, conn: ConnDep, who: StaffDep
) -> dict[str, Any]:
    """Rename a scenario and/or edit its description (its author or an admin; 403 for
    other staff)."""
    with conn.begin():
        _may_edit(conn, scenario_id, who)
        return store.update(conn, scenario_id, name=body.name,
                            description=body.description or None,
                            clear_description=body.description == "")


@router.delete("/{scenario_id}", status_code=204)
def delete_scenario(scenario_id: PathId, conn: ConnDep, who: StaffDep) -> Response:
    """Delete a scenario and its depth raster (its author or an admin; 403 otherwise)."""
    with conn.begin():
        _may_edit(conn, scenario_id, who)
        store.delete(conn, scenario_id)
    return Response(status_code=204)
