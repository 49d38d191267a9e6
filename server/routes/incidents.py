"""The staff incident API: create, edit, transition, assign, comment, list (GeoJSON)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, Field

from server.deps import ConnDep, StaffDep
from twin.bounds import MAX_BIGINT
from twin.errors import InputError
from twin.geojson import parse_bbox
from twin.incidents import store
from twin.incidents.categories import CATEGORIES
from twin.incidents.lifecycle import STATUSES

router = APIRouter(prefix="/incidents", tags=["incidents"])


Name = Annotated[str, Field(max_length=100)]
LongText = Annotated[str, Field(max_length=5000)]
IncidentId = Annotated[int, Path(ge=1, le=MAX_BIGINT)]


class IncidentIn(BaseModel):
    category: Name
    subcategory: Name | None = None
    severity: int | None = Field(default=None, ge=1, le=5)
    title: Annotated[str, Field(max_length=200)] | None = None
    description: LongText | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    public: bool = False
    geometry: dict[str, Any]
    reporter_name: Name | None = None
    reporter_email: Annotated[str, Field(max_length=254)] | None = None
    reporter_phone: Annotated[str, Field(max_length=40)] | None = None


class TransitionIn(BaseModel):
    status: Name
    reason: Name | None = None
    note: LongText | None = None


class AssignIn(BaseModel):
    units: Annotated[list[Name], Field(max_length=50)]


class CommentIn(BaseModel):
    text: LongText
    public: bool = False  # shown on the reporter's tracking timeline


def _etag(row: dict[str, Any]) -> str:
    return f'"{row["id"]}-{row["version"]}"'


def _if_match(value: str | None, incident_id: int) -> int | None:
    """The version an If-Match header names (``"<id>-<version>"``), or None."""
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    iid, _, ver = tag.partition("-")
    if not ver.isdigit() or iid != str(incident_id):
        return -1  # never current: answers 412
    return int(ver)


def _answer(row: dict[str, Any], response: Response) -> dict[str, Any]:
    response.headers["ETag"] = _etag(row)
    return store.to_feature(row, staff=True)


@router.get("/categories")
def categories() -> list[dict[str, Any]]:
    """The documented categories (code, names, default severity, SLA hours)."""
    return [
        {
            "code": c.code,
            "name_vi": c.name_vi,
            "name_en": c.name_en,
            "group": c.group,
            "severity": c.severity,
            "sla_hours": c.sla_hours,
            "subcategories": list(c.subcategories),
        }
        for c in CATEGORIES
    ]


@router.post("", status_code=201)
def create(body: IncidentIn, conn: ConnDep, who: StaffDep, response: Response) -> dict[str, Any]:
    """Create an incident (status ``reported``)."""
    with conn.begin():
        row = store.create(conn, body.model_dump(exclude_none=True), actor=who.username or "staff")
    response.headers["Location"] = f"/incidents/{row['id']}"
    return _answer(row, response)


def _codes(value: str | None, name: str, known: tuple[str, ...]) -> list[str] | None:
    """A comma list of known codes (blank items ignored); an unknown one answers 400."""
    if not value:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in known]
    if bad:
        raise InputError(f"unknown {name} {bad[0][:60]!r}; one of {', '.join(known)}")
    return items or None


def _severities(value: str | None) -> list[int] | None:
    if not value:
        return None
    out = []
    for v in (p.strip() for p in value.split(",")):
        if not v:
            continue
        if not v.isdigit() or not 1 <= int(v) <= 5:
            raise InputError("severity must be a comma list of integers from 1 to 5")
        out.append(int(v))
    return out or None


@router.get("")
def list_incidents(
    conn: ConnDep,
    who: StaffDep,
    status: Annotated[str | None, Query(
        max_length=500, description="comma list; `open` = all but closed")] = None,
    category: Annotated[str | None, Query(max_length=500, description="comma list")] = None,
    severity: Annotated[str | None, Query(max_length=50, description="comma list of 1–5")] = None,
    severity_min: Annotated[int | None, Query(ge=1, le=5)] = None,
    severity_max: Annotated[int | None, Query(ge=1, le=5)] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    ward: Annotated[str | None, Query(max_length=200)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    """Incidents as a GeoJSON FeatureCollection, newest first. Filters: status (comma
    list, ``open`` for all but closed), category, severity (list, or min/max), ward
    (its name), bbox, created since/until (RFC 3339)."""
    box = parse_bbox(bbox) if bbox else None
    statuses = _codes((status or "").replace("open", ",".join(STATUSES[:-1])) or None,
                      "status", STATUSES)
    cats = _codes(category, "category", tuple(c.code for c in CATEGORIES))
    if severity_min is not None and severity_max is not None and severity_min > severity_max:
        raise InputError("severity_min must not be above severity_max")
    for name, value in (("since", since), ("until", until)):
        if value is not None and not 2000 <= value.year <= 2200:
            raise InputError(f"{name} must be between the years 2000 and 2200")
    since = since.replace(tzinfo=dt.UTC) if since and since.tzinfo is None else since
    until = until.replace(tzinfo=dt.UTC) if until and until.tzinfo is None else until
    if since and until and since > until:
        raise InputError("since must not be after until")
    rows = store.search(
        conn,
        status=statuses,
        category=cats,
        severity=_severities(severity),
        severity_min=severity_min,
        severity_max=severity_max,
        bbox=box,
        ward=ward.strip() if ward and ward.strip() else None,
        since=since,
        until=until,
        limit=limit,
    )
    feats = [store.to_feature(r, staff=True) for r in rows]
    return {"type": "FeatureCollection", "features": feats, "numberReturned": len(feats)}


@router.get("/{incident_id}")
def read(incident_id: IncidentId, conn: ConnDep, who: StaffDep,
         response: Response) -> dict[str, Any]:
    return _answer(store.get(conn, incident_id), response)


@router.patch("/{incident_id}")
def edit(
    incident_id: IncidentId,
    changes: dict[str, Any],
    conn: ConnDep,
    who: StaffDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Edit fields; send the ETag back as If-Match (412 when someone changed it since)."""
    with conn.begin():
        row = store.update(
            conn,
            incident_id,
            changes,
            actor=who.username or "staff",
            expected_version=_if_match(if_match, incident_id),
        )
    return _answer(row, response)


@router.post("/{incident_id}/transition")
def transition(
    incident_id: IncidentId,
    body: TransitionIn,
    conn: ConnDep,
    who: StaffDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Change status; a forbidden transition answers 409 naming the allowed ones."""
    with conn.begin():
        row = store.transition(
            conn,
            incident_id,
            body.status,
            actor=who.username or "staff",
            reason=body.reason,
            note=body.note,
            expected_version=_if_match(if_match, incident_id),
        )
    return _answer(row, response)


@router.post("/{incident_id}/assign")
def assign(
    incident_id: IncidentId,
    body: AssignIn,
    conn: ConnDep,
    who: StaffDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    with conn.begin():
        row = store.assign(
            conn,
            incident_id,
            body.units,
            actor=who.username or "staff",
            expected_version=_if_match(if_match, incident_id),
        )
    return _answer(row, response)


@router.post("/{incident_id}/comments", status_code=201)
def add_comment(
    incident_id: IncidentId, body: CommentIn, conn: ConnDep, who: StaffDep, response: Response
) -> dict[str, Any]:
    with conn.begin():
        row = store.comment(conn, incident_id, body.text, actor=who.username or "staff",
                            public=body.public)
    return _answer(row, response)


@router.get("/{incident_id}/timeline")
def get_timeline(incident_id: IncidentId, conn: ConnDep, who: StaffDep) -> list[dict[str, Any]]:
    """The append-only history: who, when, what changed."""
    return store.timeline(conn, incident_id)
