"""Open311 GeoReport v2 on top of the incident store: services, requests, tokens."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

from sqlalchemy import Connection, text

from twin.errors import Conflict, InputError, NotFound
from twin.i18n import VN_TZ, local_iso, local_text, t
from twin.incidents import media, store
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


def _answers(code: str, attrs: dict[str, str], lang: str) -> list[str]:
    """The category's questions as the reporter answered them, in the report's language
    ("Nước sâu bao nhiêu (cm)? 30"; a list answer by its name); an attribute the service
    does not declare is kept as ``code=value``."""
    def part(both: str) -> str:  # the attributes' texts are "vi / en"
        vi, _, en = both.partition(" / ")
        return (en or vi) if lang == "en" else vi

    known = {a["code"]: a for a in ATTRIBUTES.get(code, [])}
    out = []
    for key, value in attrs.items():
        value = str(value).strip()
        if not value:
            continue
        a = known.get(key)
        if a is None:
            out.append(f"{key}={value}")
            continue
        shown = next((part(v["name"]) for v in a.get("values", []) if v["key"] == value), value)
        question = part(a["description"])
        out.append(f"{question} {shown}" if question.endswith("?") else f"{question}: {shown}")
    return out


def services(lang: str = "vi") -> list[dict[str, Any]]:
    return [_service(c, lang) for c in CATEGORIES if c.citizen]


def _service(c: Category, lang: str = "vi") -> dict[str, Any]:
    return {
        "service_code": c.code,
        "service_name": f"{c.name_vi} / {c.name_en}",
        "description": t("open311.service_description", lang,
                         name=c.name_vi if lang == "vi" else c.name_en, hours=c.sla_hours),
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


FIELD_LIMITS = {
    "service_code": 64,
    "description": 4000,
    "address_string": 300,
    "first_name": 100,
    "last_name": 100,
    "email": 254,
    "phone": 32,
    "device_id": 100,
    "account_id": 100,
    "media_url": 500,
    "lat": 40,
    "long": 40,
    "jurisdiction_id": 100,
    "api_key": 200,
    "lang": 16,
}
ATTRIBUTE_LIMIT = 200  # characters per attribute[...] value
MAX_FIELDS = 40
PHONE = re.compile(r"^\+?[0-9][0-9 .()\-]{4,30}$")


def check_form(form: dict[str, Any], lang: str = "vi") -> None:
    """Lengths and shapes of every field, whichever way the report came (form, JSON,
    multipart): a clear 400 before anything is written."""
    if len(form) > MAX_FIELDS:
        raise InputError(t("err.too_long", lang, field="the form", limit=MAX_FIELDS))
    for key, value in form.items():
        if value is None:
            continue
        limit = FIELD_LIMITS.get(key)
        if limit is None and key.startswith("attribute[") and key.endswith("]"):
            limit = ATTRIBUTE_LIMIT
        if limit is None:
            limit = ATTRIBUTE_LIMIT if len(key) <= 64 else 0
        if len(str(value)) > limit:
            raise InputError(t("err.too_long", lang, field=key[:64], limit=limit))
    email = (form.get("email") or "").strip()
    if email and not EMAIL.match(email):
        raise InputError(t("err.email", lang))
    phone = (form.get("phone") or "").strip()
    if phone and (not PHONE.match(phone) or not 6 <= sum(c.isdigit() for c in phone) <= 15):
        raise InputError(t("err.phone", lang))
    media_url = (form.get("media_url") or "").strip()
    if media_url and not re.match(r"^https?://[^\s]+$", media_url):
        raise InputError(t("err.media_url", lang))


def submit(
    conn: Connection,
    form: dict[str, Any],
    *,
    client: str,
    photos: list[media.Photo] | None = None,
    lang: str = "vi",
) -> dict[str, Any]:
    """POST requests: validate, create (linked to an open one nearby if any), store the
    photos in the same transaction."""
    check_form(form, lang)
    code = (form.get("service_code") or "").strip()
    if not code:
        raise InputError(t("err.required", lang, field="service_code"))
    cat = BY_CODE.get(code)
    if cat is None or not cat.citizen:
        raise InputError(t("err.service_code", lang, code=code))
    lat, lon = form.get("lat"), form.get("long")
    address = (form.get("address_string") or "").strip() or None
    if lat not in (None, "") or lon not in (None, ""):
        try:
            flat, flon = float(lat), float(lon)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputError(t("err.latlong", lang)) from None
        if not (math.isfinite(flat) and math.isfinite(flon)
                and -90 <= flat <= 90 and -180 <= flon <= 180):
            raise InputError(t("err.range", lang))
    elif address:
        found = _locate_address(conn, address)
        if found is None:
            raise InputError(t("err.address", lang, address=address))
        flon, flat = found
    else:
        raise InputError(t("err.location", lang))
    email = (form.get("email") or "").strip() or None
    description = (form.get("description") or "").strip()
    attrs = {k[10:-1]: v for k, v in form.items() if k.startswith("attribute[") and k.endswith("]")}
    for a in ATTRIBUTES.get(code, []):
        if a["required"] and not attrs.get(a["code"]):
            raise InputError(t("err.attr_required", lang, code=a["code"], service=code))
        if (
            a.get("values")
            and attrs.get(a["code"])
            and attrs[a["code"]] not in {v["key"] for v in a["values"]}
        ):
            raise InputError(t("err.attr_values", lang, code=a["code"],
                               values=", ".join(v["key"] for v in a["values"])))
    name = " ".join(x.strip() for x in (form.get("first_name"), form.get("last_name"))
                    if x and x.strip()) or None
    geom = store.point(flon, flat)
    if lines := _answers(code, attrs, lang):
        description = (description + "\n" + "; ".join(lines)).strip()
    row = store.create(
        conn,
        {
            "category": code,
            "title": cat.name_vi,
            "description": description or None,
            "address": address,
            "geometry": geom.__geo_interface__,
            "media_url": (form.get("media_url") or "").strip() or None,
            "reporter_name": name,
            "reporter_email": email,
            "reporter_phone": (form.get("phone") or "").strip() or None,
            "reporter_device": form.get("device_id"),
            # a citizen's report is about a public place: it shows on the public map once
            # staff verify it (never with the reporter's data); staff may hide it
            "public": True,
        },
        actor=f"open311:{client}",
        channel="open311",
        event_data={"lang": lang, "title_i18n": {"vi": cat.name_vi, "en": cat.name_en}},
    )
    if photos:
        names = media.store(conn, row["id"], photos)
        conn.execute(
            text("UPDATE incident SET media_url = :u WHERE id = :i"),
            {"u": media.url(names[0]), "i": row["id"]},
        )
    due = answer_due(row["created_at"]) if row.get("created_at") else None
    notice = t("open311.received", lang, hours=cat.sla_hours,
               due=local_text(due) if due else "—")
    parent = store.find_open_nearby(conn, code, geom)
    if parent is not None and parent != row["id"]:
        store.link(conn, row["id"], parent, actor=f"open311:{client}")
        notice += t("open311.linked", lang, parent=parent)
    return {
        "service_request_id": str(row["id"]),
        "token": row["token"],
        "service_notice": notice,
        "account_id": None,
    }


def _iso(v: dt.datetime | None) -> str | None:
    return v.isoformat() if v else None


# Publicly listed: verified, shown (not hidden by staff), not merged into another report;
# a closed one stays listed if it had been verified (its history is public).
LISTED_SQL = (
    "(public AND linked_to IS NULL AND (status IN ('verified', 'dispatched', 'en_route', "
    "'on_scene', 'resolved') OR (status = 'closed' AND EXISTS (SELECT 1 FROM incident_event e "
    "WHERE e.incident_id = incident.id AND e.kind = 'transition' "
    "AND e.data->>'to' = 'verified'))))"
)


def as_request(row: dict[str, Any], *, full: bool = True, base: str = "",
               lang: str = "vi") -> dict[str, Any]:
    """The Open311 view of an incident: never the reporter's contact data. ``full``:
    description and photo (publicly listed, or asked by staff or the reporter)."""
    cat = BY_CODE.get(row["category"])
    closed = row["status"] in ("resolved", "closed")
    notes = row["status"] if row["status"] != "closed" else f"closed: {row['close_reason']}"
    if row.get("linked_to"):
        notes += f"; linked to {row['linked_to']}"
    lon, lat = _point(row["geometry"])
    media_url = row.get("media_url") if full else None
    if media_url and media_url.startswith("/"):
        media_url = base + media_url
    return {
        "service_request_id": str(row["id"]),
        "status": "closed" if closed else "open",
        "status_notes": notes,
        "status_label": status_label(row, lang),
        "service_name": f"{cat.name_vi} / {cat.name_en}" if cat else row["category"],
        "service_code": row["category"],
        "description": row.get("description") if full else None,
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
        "media_url": media_url,
    }


def status_label(row: dict[str, Any], lang: str) -> str:
    label = t(f"status.{row['status']}", lang)
    if row["status"] == "closed" and row.get("close_reason"):
        label += f" ({t('close.' + row['close_reason'], lang)})"
    return label


def _point(geometry: dict[str, Any]) -> tuple[float, float]:
    from shapely.geometry import shape

    p = shape(geometry).representative_point()
    return round(p.x, 6), round(p.y, 6)


def list_requests(
    conn: Connection,
    params: dict[str, str],
    *,
    staff: bool = False,
    token: str | None = None,
    base: str = "",
    lang: str = "vi",
) -> list[dict[str, Any]]:
    """GET requests with the spec's filters (ids, service_code, dates, status). The
    public sees publicly listed requests only; staff every citizen report and public
    incident; ``token`` adds the reporter's own request."""
    if staff:
        where = ["(channel = 'open311' OR id IN (SELECT id FROM incident_public))"]
    elif token:
        where = [f"({LISTED_SQL} OR token = :token)"]
    else:
        where = [LISTED_SQL]
    args: dict[str, Any] = {"token": token}
    if params.get("service_request_id"):
        try:
            args["ids"] = [int(v) for v in params["service_request_id"].split(",")[:200]]
        except ValueError:
            raise InputError(t("err.ids", lang)) from None
        if any(not 0 < i < 2**63 for i in args["ids"]):
            raise InputError(t("err.ids", lang))
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
                    raise InputError(t("err.date", lang, field=key)) from None
                where.append(f"created_at {op} :{key}")
        if not params.get("start_date") and not params.get("end_date"):
            where.append("created_at > now() - interval '90 days'")
        if params.get("status"):
            wanted = set(params["status"].split(","))
            if not wanted <= {"open", "closed"}:
                raise InputError(t("err.status", lang))
            if wanted == {"open"}:
                where.append("status NOT IN ('resolved', 'closed')")
            elif wanted == {"closed"}:
                where.append("status IN ('resolved', 'closed')")
    rows = conn.execute(
        text(
            f"SELECT {store.COLUMNS}, {LISTED_SQL} AS listed FROM incident "
            f"WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT 1000"
        ),
        args,
    ).mappings()
    out = []
    for r in rows:
        d = dict(r)
        d["geometry"] = json.loads(d["geometry"])
        full = staff or d["listed"] or (token is not None and d["token"] == token)
        out.append(as_request(d, full=full, base=base, lang=lang))
    return out


def _by_token(conn: Connection, token: str, lang: str) -> dict[str, Any]:
    row = conn.execute(text("SELECT id FROM incident WHERE token = :t"),
                       {"t": token[:100]}).first()
    if row is None:
        raise NotFound(t("err.token_not_found", lang))
    return store.get(conn, int(row[0]))


# Vietnamese public holidays (days off, in Đà Nẵng time) on top of weekends: the fixed
# dates every year, and the lunar ones (Tết, Hùng Kings) as announced per year.
FIXED_HOLIDAYS = ((1, 1), (4, 30), (5, 1), (9, 2))
LUNAR_HOLIDAYS = frozenset(
    [dt.date(2025, 1, 25) + dt.timedelta(days=i) for i in range(9)]  # Tết Ất Tỵ
    + [dt.date(2025, 4, 7), dt.date(2025, 9, 1)]
    + [dt.date(2026, 2, 14) + dt.timedelta(days=i) for i in range(9)]  # Tết Bính Ngọ
    + [dt.date(2026, 4, 27)]  # Hùng Kings (26 April is a Sunday)
)
ANSWER_WORKING_DAYS = 3


def working_day(day: dt.date) -> bool:
    return (day.weekday() < 5 and (day.month, day.day) not in FIXED_HOLIDAYS
            and day not in LUNAR_HOLIDAYS)


def answer_due(received: dt.datetime, days: int = ANSWER_WORKING_DAYS) -> dt.datetime:
    """When the answer to a report is due: ``days`` working days (Mon–Fri, not a public
    holiday) after it was received, at the same time of day, in Đà Nẵng time."""
    local = received.astimezone(VN_TZ)
    day, left = local.date(), days
    while left:
        day += dt.timedelta(days=1)
        if working_day(day):
            left -= 1
    return dt.datetime.combine(day, local.timetz())


def _timeline(conn: Connection, incident_id: int, lang: str) -> list[dict[str, Any]]:
    """What a reporter may read: receipt, status changes, merges and staff comments marked
    public — never staff notes, actors or anyone's personal data."""
    out: list[dict[str, Any]] = []
    for e in store.timeline(conn, incident_id):
        data = e["data"] or {}
        at = local_iso(e["at"])
        if e["kind"] == "created":
            out.append({"at": at, "kind": "created", "status": "reported",
                        "text": t("timeline.created", lang)})
        elif e["kind"] == "transition":
            label = status_label({"status": data.get("to"),
                                  "close_reason": data.get("reason")}, lang)
            out.append({"at": at, "kind": "status", "status": data.get("to"),
                        "text": t("timeline.status", lang, label=label)})
        elif e["kind"] == "comment" and data.get("public") is True:
            out.append({"at": at, "kind": "comment", "status": None, "text": data.get("text")})
        elif e["kind"] == "linked" and data.get("to"):
            out.append({"at": at, "kind": "linked", "status": None,
                        "text": t("timeline.linked", lang, parent=data["to"])})
    return out


def tracking(conn: Connection, token: str, *, base: str = "", lang: str = "vi") -> dict[str, Any]:
    """The reporter's view of their own report by its follow-up token."""
    row = _by_token(conn, token, lang)
    cat = BY_CODE.get(row["category"])
    lon, lat = _point(row["geometry"])
    names = media.names_of(conn, row["id"])
    return {
        "token": token,
        "service_request_id": str(row["id"]),
        "service_code": row["category"],
        "service_name": (cat.name_vi if lang == "vi" else cat.name_en) if cat else row["category"],
        "status": row["status"],
        "status_label": status_label(row, lang),
        "description": row.get("description"),
        "address": row.get("address"),
        "lat": lat,
        "long": lon,
        "requested_datetime": local_iso(row["created_at"]),
        "updated_datetime": local_iso(row["updated_at"]),
        "expected_datetime": local_iso(answer_due(row["created_at"])),
        "public": bool(listed(conn, row["id"])),
        "supporters": int(row.get("supporters") or 0),
        "linked_to": str(row["linked_to"]) if row.get("linked_to") else None,
        "media": [{"url": base + media.url(n), "thumb": base + media.url(n, thumb=True)}
                  for n in names],
        "timeline": _timeline(conn, row["id"], lang),
    }


def by_token(conn: Connection, token: str) -> dict[str, Any]:
    row = _by_token(conn, token, "en")
    return {"service_request_id": str(row["id"]), "token": token}


def listed(conn: Connection, incident_id: int) -> bool:
    return bool(conn.execute(
        text(f"SELECT {LISTED_SQL} FROM incident WHERE id = :i"), {"i": incident_id}
    ).scalar())


def nearby(
    conn: Connection, code: str, lat: float, lon: float, radius: float, *, lang: str = "vi"
) -> list[dict[str, Any]]:
    """Open, publicly listed reports of ``code`` within ``radius`` metres, nearest first
    (so a citizen can support one instead of reporting it again)."""
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        raise InputError(t("err.range", lang))
    if not (math.isfinite(radius) and 0 < radius <= 200):
        raise InputError(t("err.radius", lang))
    cat = BY_CODE.get(code)
    if cat is None or not cat.citizen:
        raise InputError(t("err.service_code", lang, code=code))
    rows = conn.execute(
        text(
            "WITH here AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g) "
            "SELECT i.id, i.status, i.description, i.created_at, "
            "ST_Y(ST_PointOnSurface(i.geom)) AS lat, ST_X(ST_PointOnSurface(i.geom)) AS lon, "
            "ST_Distance(i.geom::geography, here.g) AS d, "
            "(SELECT count(*) FROM incident_supporter s WHERE s.incident_id = i.id) AS n "
            "FROM incident i, here WHERE i.category = :c "
            "AND i.id IN (SELECT id FROM incident_public) AND i.status <> 'resolved' "
            "AND ST_DWithin(i.geom::geography, here.g, :r) ORDER BY d, i.id LIMIT 50"
        ),
        {"lon": lon, "lat": lat, "c": code, "r": radius},
    )
    return [
        {
            "service_request_id": str(r.id),
            "service_code": code,
            "service_name": f"{cat.name_vi} / {cat.name_en}",
            "status": r.status,
            "status_label": t(f"status.{r.status}", lang),
            "description": r.description,
            "requested_datetime": local_iso(r.created_at),
            "lat": round(float(r.lat), 6),
            "long": round(float(r.lon), 6),
            "distance_m": round(float(r.d), 1),
            "supporters": int(r.n),
        }
        for r in rows
    ]


def support(
    conn: Connection, request_id: int, *, token: str | None, client: str, lang: str = "vi"
) -> dict[str, Any]:
    """A citizen says "me too" on an open, publicly listed report; with the token of
    their own report, that report is linked to this one (counted once)."""
    row = conn.execute(
        text("SELECT id, status FROM incident WHERE id = :i AND id IN "
             "(SELECT id FROM incident_public) FOR UPDATE"),
        {"i": request_id},
    ).first()
    if row is None:
        raise NotFound(t("err.request_not_found", lang, id=str(request_id)))
    if row.status in ("resolved", "closed"):
        raise Conflict(t("err.not_open", lang, id=request_id))
    own: int | None = None
    if token:
        mine = _by_token(conn, token, lang)
        own = mine["id"] if mine["id"] != request_id else None
    inserted = conn.execute(
        text("INSERT INTO incident_supporter (incident_id, report_id) VALUES (:i, :r) "
             "ON CONFLICT DO NOTHING RETURNING id"),
        {"i": request_id, "r": own},
    ).first()
    count = int(conn.execute(
        text("SELECT count(*) FROM incident_supporter WHERE incident_id = :i"),
        {"i": request_id},
    ).scalar_one())
    if inserted is not None:
        if own is not None:
            linked = conn.execute(text("SELECT linked_to FROM incident WHERE id = :i"),
                                  {"i": own}).scalar()
            if linked is None:
                store.link(conn, own, request_id, actor=f"open311:{client}")
        store.event(conn, request_id, f"open311:{client}", "supported", {"supporters": count})
    return {"service_request_id": str(request_id), "supporters": count}


def media_for(
    conn: Connection, name: str, *, thumb: bool, staff: bool, token: str | None,
    lang: str = "vi",
) -> tuple[str, bytes]:
    """A photo for whoever may see it: anyone once its report is publicly listed, else
    staff or the holder of the report's token. Otherwise NotFound (nothing is revealed)."""
    found = media.load(conn, name[:100], thumb)
    if found is None:
        raise NotFound(t("err.media_not_found", lang))
    incident_id, ctype, data = found
    if not staff and not listed(conn, incident_id):
        owner = conn.execute(text("SELECT token FROM incident WHERE id = :i"),
                             {"i": incident_id}).scalar()
        if not token or token != owner:
            raise NotFound(t("err.media_not_found", lang))
    return ctype, data
