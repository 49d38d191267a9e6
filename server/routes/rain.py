"""Rain floods (issue 16): ``POST /scenarios/rain`` — runoff by the SCS curve number,
drains, fill-and-spill over the DEM; stored and answered like ``POST /scenarios/flood``
(kind ``rain``: the same depth tiles, compare and export)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from server.deps import ConnDep, SettingsDep, StaffDep
from twin.errors import InputError
from twin.scenarios import store
from twin.scenarios.rain import MAX_INTERVALS, RainParams, run_rain

router = APIRouter(prefix="/scenarios", tags=["scenarios"])


class RainIn(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")

    rain_mm: float | None = Field(default=None, description="total rain (mm), with hours")
    hours: float | None = Field(default=None, description="how long it rains (h)")
    hyetograph: list[float] | None = Field(
        default=None, max_length=MAX_INTERVALS,
        description="or the rain per interval (mm), each interval_h long")
    interval_h: float = Field(default=1.0, description="interval length (h)")
    drainage_mm_per_h: float | None = Field(
        default=None, description="drain capacity (mm/h); default: 200 mm/day, the upper "
        "design figure of the city's drains (issue 16)")
    sea_level_m: float | None = Field(default=None, description="sea level (tide), metres")
    antecedent: Literal["dry", "normal", "wet"] = "normal"
    dem: str | None = Field(default=None, max_length=200,
                            description="registered DEM (default: the newest)")
    impassable_depth_m: float = Field(default=0.3, description="roads deeper are impassable")
    name: Annotated[str, Field(max_length=100)] | None = None
    save: bool = True
    public: bool = Field(default=False, description="depth tiles visible to everyone")


@router.post("/rain", status_code=200)
def rain(
    body: RainIn, conn: ConnDep, settings: SettingsDep, who: StaffDep, response: Response,
    include: Annotated[str | None, Query(
        max_length=200, description="comma list: features (affected buildings and roads), "
        "geometry (the flooded outline), depth_classes (the flooded land by depth class)",
    )] = None,
) -> dict[str, Any]:
    """Rain on the DEM: where the water stands at the end of the rain and what it
    touches (flooded area by depth class, buildings, roads, facilities, people, the water
    balance). Depth tiles: ``links.tiles``."""
    inc = {p.strip() for p in (include or "").split(",") if p.strip()}
    if inc - {"features", "geometry", "depth_classes"}:
        raise InputError("include takes features, geometry and/or depth_classes")
    params = RainParams(
        rain_mm=body.rain_mm, hours=body.hours,
        hyetograph=tuple(body.hyetograph) if body.hyetograph is not None else None,
        interval_h=body.interval_h, drainage_mm_per_h=body.drainage_mm_per_h,
        sea_level_m=body.sea_level_m, antecedent=body.antecedent, dem=body.dem,
        impassable_depth_m=body.impassable_depth_m, name=body.name)
    with conn.begin():
        answer = run_rain(conn, settings, params, created_by=who.username, save=body.save,
                          public=body.public, features="features" in inc,
                          depth_classes="depth_classes" in inc)
        if "geometry" in inc and answer.get("id") is not None:
            answer["geometry"] = store.get(conn, answer["id"])["geometry"]
    if answer.get("id") is not None:
        response.status_code = 201
        response.headers["Location"] = f"/scenarios/{answer['id']}"
    return answer
