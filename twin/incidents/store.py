"""Incident storage: every change is one transaction that bumps the version, appends to
the timeline and notifies the live channel (delivered when the transaction commits)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from twin.errors import Conflict, InputError, NotFound, PreconditionFailed
from twin.geojson import read_geometry
from twin.incidents.categories import get_category
from twin.incidents.lifecycle import CLOSE_REASONS, allowed, can_transition

LIVE_CHANNEL = "twin_live"
PRIVATE_FIELDS = ("reporter_name", "reporter_email", "reporter_phone", "reporter_device")
EDITABLE = (
    "category",
    "subcategory",
    "severity",
    "title",
    "description",
    "address",
    "public",
    "sla_due",
    "media_url",
)
TEXT_LIMITS = {
    "title": 200,
    "subcategory": 100,
    "description": 5000,
    "address": 500,
    "media_url": 2000,
    "reporter_name": 100,
    "reporter_email": 254,
    "reporter_phone": 40,
    "reporter_device": 200,
}
"""Longest accepted text per field (characters), on every write path."""
COMMENT_LIMIT = 5000
COLUMNS = (
    "id, category, subcategory, severity, status, close_reason, title, description, address, "
    "ward, reporter_name, reporter_email, reporter_phone, reporter_device, media_url, public, "
    "assigned_units, channel, token, linked_to, cap_published_at, cap_expires_at, sla_due, "
    "created_at, updated_at, version, ST_AsGeoJSON(geom, 7) AS geometry, "
    "(SELECT count(*) FROM incident_supporter s WHERE s.incident_id = incident.id)::int "
    "AS supporters, "
    # the ward's English name, for a page in English (the ward is stored as named in vi)
    "(SELECT a.name_en FROM admin_area a WHERE a.name_vi = incident.ward "
    "AND a.name_en IS NOT NULL ORDER BY a.valid_to DESC NULLS FIRST LIMIT 1) AS ward_en"
)


INCIDENT_GEOMETRIES = ("Point", "Polygon", "MultiPolygon")


def parse_geometry(value: Any) -> BaseGeometry:
    """A GeoJSON Point/Polygon/MultiPolygon (EPSG:4326) inside the city, read by the
    server's one GeoJSON validator (:func:`twin.geojson.read_geometry`)."""
    return read_geometry(value, "geometry", types=INCIDENT_GEOMETRIES, city=True)


def point(lon: float, lat: float) -> BaseGeometry:
    return parse_geometry({"type": "Point", "coordinates": [lon, lat]})


def ward_at(conn: Connection, geom: BaseGeometry) -> str | None:
    """The current ward (or, failing that, district) containing the geometry."""
    row = conn.execute(
        text(
            "SELECT name_vi FROM admin_area "
            "WHERE ST_Intersects(geom, ST_PointOnSurface(ST_GeomFromText(:wkt, 4326))) "
            "AND (valid_to IS NULL OR valid_to > now()) "
            "ORDER BY CASE level WHEN 'ward' THEN 0 WHEN 'commune' THEN 0 "
            "WHEN 'district' THEN 1 ELSE 2 END LIMIT 1"
        ),
        {"wkt": geom.wkt},
    ).first()
    return row[0] if row else None


def _row(conn: Connection, incident_id: int, lock: bool = False) -> dict[str, Any]:
    sql = f"SELECT {COLUMNS} FROM incident WHERE id = :id" + (" FOR UPDATE" if lock else "")
    row = conn.execute(text(sql), {"id": incident_id}).mappings().first()
    if row is None:
        raise NotFound(f"incident {incident_id} not found")
    out = dict(row)
    out["geometry"] = json.loads(out["geometry"])
    return out


def get(conn: Connection, incident_id: int) -> dict[str, Any]:
    return _row(conn, incident_id)


def event(conn: Connection, incident_id: int, actor: str, kind: str, data: dict[str, Any]) -> int:
    """Append to the timeline and notify the live channel; returns the event id."""
    eid = int(
        conn.execute(
            text(
                "INSERT INTO incident_event (incident_id, actor, kind, data) "
                "VALUES (:i, :a, :k, CAST(:d AS jsonb)) RETURNING id"
            ),
            {"i": incident_id, "a": actor, "k": kind, "d": json.dumps(data, default=str)},
        ).scalar_one()
    )
    payload = json.dumps({"event": eid, "incident": incident_id, "kind": kind})
    conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": LIVE_CHANNEL, "p": payload})
    return eid


def _check_fields(data: dict[str, Any]) -> None:
    if "category" in data and get_category(str(data["category"])[:100]) is None:
        raise InputError(f"unknown category {str(data['category'])[:100]!r}")
    if "severity" in data:
        sev = data["severity"]
        if not isinstance(sev, int) or isinstance(sev, bool) or not 1 <= sev <= 5:
            raise InputError("severity must be an integer from 1 to 5")
    if "title" in data and not str(data["title"] or "").strip():
        raise InputError("title must not be empty")
    for key, most in TEXT_LIMITS.items():
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InputError(f"{key} must be a string")
        if len(value) > most:
            raise InputError(f"{key} is longer than {most} characters")
    if "public" in data and not isinstance(data["public"], bool):
        raise InputError("public must be true or false")
    if data.get("sla_due") is not None:
        data["sla_due"] = _parse_due(data["sla_due"])


def _parse_due(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        due = value
    else:
        try:
            due = dt.datetime.fromisoformat(str(value).replace("z", "Z"))
        except ValueError:
            raise InputError("sla_due must be an RFC 3339 date-time") from None
    if due.tzinfo is None:
        due = due.replace(tzinfo=dt.UTC)
    if not 2000 <= due.year <= 2200:
        raise InputError("sla_due must be between the years 2000 and 2200")
    return due


def create(
    conn: Connection,
    data: dict[str, Any],
    *,
    actor: str,
    channel: str = "staff",
    event_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create an incident in status ``reported``; fills ward, SLA and a follow-up token.
    ``event_data`` adds to the timeline's ``created`` event (a sensor rule's reading)."""
    _check_fields(data)
    cat = get_category(str(data.get("category", "")))
    if cat is None:
        raise InputError(f"unknown category {data.get('category')!r}")
    geom = parse_geometry(data.get("geometry"))
    severity = data.get("severity") or cat.severity
    title = (data.get("title") or cat.name_vi).strip()
    now = dt.datetime.now(dt.UTC)
    params = {
        "category": cat.code,
        "subcategory": data.get("subcategory"),
        "severity": severity,
        "title": title,
        "description": data.get("description"),
        "address": data.get("address"),
        "ward": ward_at(conn, geom),
        "public": bool(data.get("public", False)),
        "channel": channel,
        "token": secrets.token_urlsafe(12),
        "sla_due": data.get("sla_due") or now + dt.timedelta(hours=cat.sla_hours),
        "media_url": data.get("media_url"),
        "wkt": geom.wkt,
        **{f: data.get(f) for f in PRIVATE_FIELDS},
    }
    iid = int(
        conn.execute(
            text(
                "INSERT INTO incident (category, subcategory, severity, status, title, "
                "description, address, ward, public, channel, token, sla_due, media_url, "
                "reporter_name, reporter_email, reporter_phone, reporter_device, "
                "assigned_units, version, geom) VALUES (:category, :subcategory, :severity, "
                "'reported', :title, :description, :address, :ward, :public, :channel, :token, "
                ":sla_due, :media_url, :reporter_name, :reporter_email, :reporter_phone, "
                ":reporter_device, '[]'::jsonb, 1, ST_GeomFromText(:wkt, 4326)) RETURNING id"
            ),
            params,
        ).scalar_one()
    )
    event(conn, iid, actor, "created",
          {**(event_data or {}), "status": "reported", "channel": channel})
    return _row(conn, iid)


def _bump(
    conn: Connection,
    incident_id: int,
    expected_version: int | None,
    sets: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    current = _row(conn, incident_id, lock=True)
    if expected_version is not None and current["version"] != expected_version:
        raise PreconditionFailed(
            f"incident {incident_id} is at version {current['version']}, "
            f"not {expected_version}: reload and retry"
        )
    conn.execute(
        text(
            f"UPDATE incident SET {sets}, version = version + 1, updated_at = now() WHERE id = :id"
        ),
        {"id": incident_id, **params},
    )
    return current


def update(
    conn: Connection,
    incident_id: int,
    changes: dict[str, Any],
    *,
    actor: str,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Edit fields (not the status); records old and new values in the timeline."""
    unknown = set(changes) - set(EDITABLE) - {"geometry"}
    if unknown:
        raise InputError(
            f"cannot edit {', '.join(sorted(unknown))}; editable: {', '.join(EDITABLE)}, geometry"
        )
    if not changes:
        raise InputError("nothing to change")
    _check_fields(changes)
    sets: list[str] = []
    params: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "geometry":
            geom = parse_geometry(value)
            sets += ["geom = ST_GeomFromText(:wkt, 4326)", "ward = :ward"]
            params.update(wkt=geom.wkt, ward=ward_at(conn, geom))
        else:
            sets.append(f"{key} = :{key}")
            params[key] = value
    before = _bump(conn, incident_id, expected_version, ", ".join(sets), params)
    diff = {k: {"from": before.get(k), "to": v} for k, v in changes.items() if k != "geometry"}
    if "geometry" in changes:
        diff["geometry"] = {"from": before["geometry"], "to": changes["geometry"]}
    event(conn, incident_id, actor, "updated", diff)
    return _row(conn, incident_id)


def transition(
    conn: Connection,
    incident_id: int,
    target: str,
    *,
    actor: str,
    reason: str | None = None,
    note: str | None = None,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Move to ``target``; :class:`Conflict` names the allowed statuses when forbidden."""
    current = _row(conn, incident_id, lock=True)
    status = current["status"]
    if not can_transition(status, target):
        options = ", ".join(allowed(status)) or "none (closed is final)"
        raise Conflict(f"cannot go from {status} to {target}; allowed: {options}")
    if target == "closed":
        reason = reason or ("resolved" if status == "resolved" else None)
        if reason not in CLOSE_REASONS:
            raise InputError(f"closing needs a reason: one of {', '.join(CLOSE_REASONS)}")
    elif reason is not None:
        raise InputError("a reason is given only when closing")
    _bump(
        conn,
        incident_id,
        expected_version,
        "status = :s, close_reason = :r",
        {"s": target, "r": reason if target == "closed" else None},
    )
    event(
        conn,
        incident_id,
        actor,
        "transition",
        {"from": status, "to": target, "reason": reason, "note": note},
    )
    return _row(conn, incident_id)


def assign(
    conn: Connection,
    incident_id: int,
    units: list[str],
    *,
    actor: str,
    expected_version: int | None = None,
) -> dict[str, Any]:
    if not isinstance(units, list) or not all(isinstance(u, str) and u.strip() for u in units):
        raise InputError("units must be a list of unit names")
    if len(units) > 50 or any(len(u) > 100 for u in units):
        raise InputError("at most 50 units, each name at most 100 characters")
    before = _bump(
        conn,
        incident_id,
        expected_version,
        "assigned_units = CAST(:u AS jsonb)",
        {"u": json.dumps(units)},
    )
    event(conn, incident_id, actor, "assigned", {"from": before["assigned_units"], "to": units})
    return _row(conn, incident_id)


def comment(
    conn: Connection, incident_id: int, body: str, *, actor: str, public: bool = False
) -> dict[str, Any]:
    """A staff comment; ``public`` ones show on the reporter's tracking timeline."""
    if not body or not body.strip():
        raise InputError("comment text must not be empty")
    if len(body) > COMMENT_LIMIT:
        raise InputError(f"comment longer than {COMMENT_LIMIT} characters")
    _bump(conn, incident_id, None, "id = id", {})
    event(conn, incident_id, actor, "comment", {"text": body.strip(), "public": bool(public)})
    return _row(conn, incident_id)


def timeline(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    _row(conn, incident_id)
    rows = conn.execute(
        text(
            "SELECT id, at, actor, kind, data FROM incident_event "
            "WHERE incident_id = :i ORDER BY id"
        ),
        {"i": incident_id},
    ).mappings()
    return [dict(r) for r in rows]


def find_open_nearby(
    conn: Connection,
    category: str,
    geom: BaseGeometry,
    radius_m: float = 150,
    hours: float = 48,
) -> int | None:
    """An open incident of the same category within ``radius_m`` metres (oldest first)."""
    row = conn.execute(
        text(
            "SELECT id FROM incident WHERE category = :c AND status <> 'closed' "
            "AND linked_to IS NULL AND created_at > now() - make_interval(hours => :h) "
            "AND ST_DWithin(geom::geography, ST_GeomFromText(:wkt, 4326)::geography, :r) "
            "ORDER BY created_at LIMIT 1"
        ),
        {"c": category, "wkt": geom.wkt, "r": radius_m, "h": hours},
    ).first()
    return int(row[0]) if row else None


def link(conn: Connection, child: int, parent: int, *, actor: str) -> None:
    conn.execute(
        text("UPDATE incident SET linked_to = :p, version = version + 1 WHERE id = :c"),
        {"p": parent, "c": child},
    )
    event(conn, parent, actor, "linked", {"report": child})
    event(conn, child, actor, "linked", {"to": parent})


def to_feature(row: dict[str, Any], *, staff: bool) -> dict[str, Any]:
    """GeoJSON Feature of an incident; reporter contact only for staff."""
    props = {k: v for k, v in row.items() if k not in ("geometry", "id")}
    for k, v in list(props.items()):
        if isinstance(v, dt.datetime):
            props[k] = v.isoformat()
    if not staff:
        for k in (
            *PRIVATE_FIELDS,
            "token",
            "description",
            "assigned_units",
            "channel",
            "linked_to",
            "media_url",
        ):
            props.pop(k, None)
    return {"type": "Feature", "id": row["id"], "geometry": row["geometry"], "properties": props}


def is_public(row: dict[str, Any]) -> bool:
    from twin.incidents.lifecycle import PUBLIC_STATUSES

    return bool(row["public"]) and row["status"] in PUBLIC_STATUSES and not row["linked_to"]


def search(
    conn: Connection,
    *,
    status: list[str] | None = None,
    category: list[str] | None = None,
    severity: list[int] | None = None,
    severity_min: int | None = None,
    severity_max: int | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    ward: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 500,
    public_only: bool = False,
) -> list[dict[str, Any]]:
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    if status:
        where.append("status = ANY(:status)")
        params["status"] = status
    if category:
        where.append("category = ANY(:category)")
        params["category"] = category
    if severity:
        where.append("severity = ANY(:sevs)")
        params["sevs"] = severity
    if severity_min is not None:
        where.append("severity >= :sev")
        params["sev"] = severity_min
    if severity_max is not None:
        where.append("severity <= :sevmax")
        params["sevmax"] = severity_max
    if bbox:
        where.append("geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    if ward:
        where.append("ward = :ward")
        params["ward"] = ward
    if since:
        where.append("created_at >= :since")
        params["since"] = since
    if until:
        where.append("created_at < :until")
        params["until"] = until
    if public_only:
        where.append("id IN (SELECT id FROM incident_public)")
    params["limit"] = limit
    rows = conn.execute(
        text(
            f"SELECT {COLUMNS} FROM incident WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        params,
    ).mappings()
    out = []
    for r in rows:
        d = dict(r)
        d["geometry"] = json.loads(d["geometry"])
        out.append(d)
    return out
