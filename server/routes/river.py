"""River floods by stage (issue 16): ``POST /scenarios/river`` — a water level at a gauge,
the height above the nearest drainage (HAND) of every cell; stored and answered like
``POST /scenarios/flood`` (kind ``river``: the same depth tiles, compare and export)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from server.deps import ConnDep, SettingsDep, StaffDep
from twin.errors import InputError
from twin.scenarios import store
from twin.scenarios.river import GAUGES, RiverParams, run_river

router = APIRouter(prefix="/scenarios", tags=["scenarios"])


class RiverIn(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")

    stage_m: float | None = Field(
        default=None, description="water level at the gauge (m, the gauge's datum); with "
        "incident_id: default its flood-tower reading")
    gauge: str | None = Field(default="cam_le", max_length=50,
                              description="gauge: " + ", ".join(GAUGES))
    at: list[float] | None = Field(default=None, min_length=2, max_length=2,
                                   description="or a point [lon, lat] on a river")
    dem: str | None = Field(default=None, max_length=200,
                            description="registered DEM (default: the newest)")
    impassable_depth_m: float = Field(default=0.3, description="roads deeper are impassable")
    name: Annotated[str, Field(max_length=100)] | None = None
    incident_id: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="a flood incident: the river at its "
        "place, its flood-tower reading as the stage (unless given); the run goes on its "
        "timeline")
    save: bool = True
    public: bool = Field(default=False, description="depth tiles visible to everyone")


@router.post("/river", status_code=200)
def river(
    body: RiverIn, conn: ConnDep, settings: SettingsDep, who: StaffDep, response: Response,
    include: Annotated[str | None, Query(
        max_length=200, description="comma list: features (affected buildings and roads), "
        "geometry (the flooded outline)")] = None,
) -> dict[str, Any]:
    """The rivers at a stage: the land they flood (depth = water height over the bed −
    HAND) and what it touches. Depth tiles: ``links.tiles``."""
    inc = {p.strip() for p in (include or "").split(",") if p.strip()}
    if inc - {"features", "geometry"}:
        raise InputError("include takes features and/or geometry")
    params = RiverParams(
        stage_m=body.stage_m, gauge=body.gauge,
        at=(body.at[0], body.at[1]) if body.at is not None else None, dem=body.dem,
        impassable_depth_m=body.impassable_depth_m, name=body.name,
        incident_id=body.incident_id)
    with conn.begin():
        answer = run_river(conn, settings, params, created_by=who.username, save=body.save,
                           public=body.public, features="features" in inc)
        if "geometry" in inc and answer.get("id") is not None:
            answer["geometry"] = store.get(conn, answer["id"])["geometry"]
    if answer.get("id") is not None:
        response.status_code = 201
        response.headers["Location"] = f"/scenarios/{answer['id']}"
    return answer
