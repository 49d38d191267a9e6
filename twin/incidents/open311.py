"""Open311 GeoReport v2 on top of the incident store: services, requests, tokens."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import Connection, text

from twin.errors import InputError, NotFound
from twin.incidents import store
from twin.incidents.categories import BY_CODE, CATEGORIES, Category

AGENCY = "Trung tâm Giám sát điều hành đô thị thông minh Đà Nẵng (IOC)"
JURISDICTION = "danang.gov.vn"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

ATTRIBUTES: dict[str, list[dict[str, Any]]] = {
    "flood": [
        {
            "variable": True,
            "code": "depth_cm",
            "datatype": "number",
            "required": False,
            "datatype_description": "Water depth in centimetres",
            "order": 1,
            "description": "Nước sâu bao nhiêu (cm)? / How deep is the water (cm)?",
        }
    ],
    "fire": [
        {
            "variable": True,
            "code": "people_trapped",
            "datatype": "singlevaluelist",
            "required": True,
            "datatype_description": None,
            "order": 1,
            "description": "Có người mắc kẹt không? / Is anyone trapped?",
            "values": [
                {"key": "yes", "name": "Có / Yes"},
                {"key": "no", "name": "Không / No"},
                {"key": "unknown", "name": "Không rõ / Unknown"},
            ],
        }
    ],
    "traffic_accident": [
        {
            "variable": True,
            "code": "injured",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": None,
            "order": 1,
            "description": "Có người bị thương không? / Is anyone injured?",
            "values": [{"key": "yes", "name": "Có / Yes"}, {"key": "no", "name": "Không / No"}],
        }
    ],
}


def services() -> list[dict[str, Any]]:
    return [_service(c) for c in CATEGORIES if c.citizen]


def _service(c: Category) -> dict[str, Any]:
    return {
        "service_code": c.code,
        "service_name": f"{c.name_vi} / {c.name_en}",
        "description": f"{c.name_en}: expected handling within {c.sla_hours:g} h",
        "metadata": c.code in ATTRIBUTES,
        "type": "realtime",
        "keywords": ", ".join([c.code, *c.subcategories]),
        "group": c.group,
    }


def service_definition(code: str) -> dict[str, Any]:
    if code not in BY_CODE:
        raise NotFound(f"service_code {code!r} not found")
    return {"service_code": code, "attributes": ATTRIBUTES.get(code, [])}


def _locate_address(conn: Connection, address: str) -> tuple[float, float] | None:
    """Where an address string lies: a named place, facility or street (no diacritics
    needed)."""
    row = conn.execute(
        text(
            "SELECT ST_X(p), ST_Y(p) FROM ("
            " SELECT geom AS p, unaccent(lower(name_vi)) AS n, 0 AS r FROM place"
            " UNION ALL SELECT geom, unaccent(lower(name_vi)), 1 FROM facility"
            " UNION ALL SELECT ST_LineInterpolatePoint(geom, 0.5), unaccent(lower(name)), 2"
            "   FROM road_segment WHERE name IS NOT NULL) s "
            "WHERE position(n IN unaccent(lower(:a))) > 0 AND length(n) > 3 "
            "ORDER BY length(n) DESC, r LIMIT 1"
        ),
        {"a": address},
    ).first()
    return (float(row[0]), float(row[1])) if row else None


def submit(conn: Connection, form: dict[str, Any], *, client: str) -> dict[str, Any]:
    """POST requests: validate, create (linked to an open one nearby if any)."""
    code = (form.get("service_code") or "").strip()
    if not code:
        raise InputError("service_code is required")
    cat = BY_CODE.get(code)
    if cat is None or not cat.citizen:
        raise InputError(f"service_code {code!r} not found")
    lat, lon = form.get("lat"), form.get("long")
    address = (form.get("address_string") or "").strip() or None
    if lat not in (None, "") or lon not in (None, ""):
        try:
            flat, flon = float(lat), float(lon)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputError("lat and long must both be numbers") from None
    elif address:
        found = _locate_address(conn, address)
        if found is None:
            raise InputError(f"address {address!r} not found; send lat and long")
        flon, flat = found
    else:
        raise InputError("a location is required: lat and long, or address_string")
    email = (form.get("email") or "").strip() or None
    if email and not EMAIL.match(email):
        raise InputError("email is not a valid address")
    description = (form.get("description") or "").strip()
    if len(description) > 4000:
        raise InputError("description is longer than 4000 characters")
    attrs = {k[10:-1]: v for k, v in form.items() if k.startswith("attribute[") and k.endswith("]")}
    for a in ATTRIBUTES.get(code, []):
        if a["required"] and not attrs.get(a["code"]):
            raise InputError(f"attribute[{a['code']}] is required for {code}")
        if (
            a.get("values")
            and attrs.get(a["code"])
            and attrs[a["code"]] not in {v["key"] for v in a["values"]}
        ):
            raise InputError(
                f"attribute[{a['code']}] must be one of " + ", ".join(v["key"] for v in a["values"])
            )
    name = " ".join(x for x in (form.get("first_name"), form.get("last_name")) if x) or None
    geom = store.point(flon, flat)
    if attrs:
        description = (description + "\n" + "; ".join(f"{k}={v}" for k, v in attrs.items())).strip()
    row = store.create(
        conn,
        {
            "category": code,
            "title": cat.name_vi,
            "description": description or None,
            "address": address,
            "geometry": geom.__geo_interface__,
            "media_url": form.get("media_url"),
            "reporter_name": name,
            "reporter_email": email,
            "reporter_phone": form.get("phone"),
            "reporter_device": form.get("device_id"),
            # a citizen's report is about a public place: it shows on the public map once
            # staff verify it (never with the reporter's data); staff may hide it
            "public": True,
        },
        actor=f"open311:{client}",
        channel="open311",
    )
    notice = f"Đã tiếp nhận / Received. Expected handling within {cat.sla_hours:g} h."
    parent = store.find_open_nearby(conn, code, geom)
    if parent is not None and parent != row["id"]:
        store.link(conn, row["id"], parent, actor=f"open311:{client}")
        notice += f" Linked to request {parent}, already being handled."
    return {
        "service_request_id": str(row["id"]),
        "token": row["token"],
        "service_notice": notice,
        "account_id": None,
    }


def _iso(v: dt.datetime | None) -> str | None:
    return v.isoformat() if v else None


def as_request(row: dict[str, Any]) -> dict[str, Any]:
    """The public Open311 view of an incident: never the reporter's contact data."""
    cat = BY_CODE.get(row["category"])
    visible = store.is_public(row)
    closed = row["status"] in ("resolved", "closed")
    notes = row["status"] if row["status"] != "closed" else f"closed: {row['close_reason']}"
    if row.get("linked_to"):
        notes += f"; linked to {row['linked_to']}"
    lon, lat = _point(row["geometry"])
    return {
        "service_request_id": str(row["id"]),
        "status": "closed" if closed else "open",
        "status_notes": notes,
        "service_name": f"{cat.name_vi} / {cat.name_en}" if cat else row["category"],
        "service_code": row["category"],
        "description": row.get("description") if visible else None,
        "agency_responsible": AGENCY,
        "service_notice": None,
        "requested_datetime": _iso(row["created_at"]),
        "updated_datetime": _iso(row["updated_at"]),
        "expected_datetime": _iso(row.get("sla_due")),
        "address": row.get("address"),
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": row.get("media_url") if visible else None,
    }


def _point(geometry: dict[str, Any]) -> tuple[float, float]:
    from shapely.geometry import shape

    p = shape(geometry).representative_point()
    return round(p.x, 6), round(p.y, 6)


def list_requests(conn: Connection, params: dict[str, str]) -> list[dict[str, Any]]:
    """GET requests with the spec's filters (ids, service_code, dates, status)."""
    where = ["(channel = 'open311' OR id IN (SELECT id FROM incident_public))"]
    args: dict[str, Any] = {}
    if params.get("service_request_id"):
        try:
            args["ids"] = [int(v) for v in params["service_request_id"].split(",")]
        except ValueError:
            raise InputError("service_request_id must be a comma list of ids") from None
        where.append("id = ANY(:ids)")
    else:
        if params.get("service_code"):
            args["codes"] = params["service_code"].split(",")
            where.append("category = ANY(:codes)")
        for key, op in (("start_date", ">="), ("end_date", "<=")):
            if params.get(key):
                try:
                    args[key] = dt.datetime.fromisoformat(params[key].replace("Z", "+00:00"))
                except ValueError:
                    raise InputError(f"{key} must be a W3C date-time") from None
                where.append(f"created_at {op} :{key}")
        if not params.get("start_date") and not params.get("end_date"):
            where.append("created_at > now() - interval '90 days'")
        if params.get("status"):
            wanted = set(params["status"].split(","))
            if not wanted <= {"open", "closed"}:
                raise InputError("status must be open, closed or both")
            if wanted == {"open"}:
                where.append("status NOT IN ('resolved', 'closed')")
            elif wanted == {"closed"}:
                where.append("status IN ('resolved', 'closed')")
    rows = conn.execute(
        text(
            f"SELECT {store.COLUMNS} FROM incident WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC LIMIT 1000"
        ),
        args,
    ).mappings()
    out = []
    import json

    for r in rows:
        d = dict(r)
        d["geometry"] = json.loads(d["geometry"])
        out.append(as_request(d))
    return out


def by_token(conn: Connection, token: str) -> dict[str, Any]:
    row = conn.execute(text("SELECT id FROM incident WHERE token = :t"), {"t": token}).first()
    if row is None:
        raise NotFound("token not found")
    return {"service_request_id": str(row[0]), "token": token}
