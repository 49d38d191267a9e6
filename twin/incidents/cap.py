"""CAP 1.2 alerts for published incidents (info blocks in Vietnamese and English)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree import ElementTree as ET

from sqlalchemy import Connection, text

from twin.errors import Conflict, InputError
from twin.incidents import store
from twin.incidents.categories import BY_CODE
from twin.incidents.lifecycle import CAP_SEVERITY, CAP_URGENCY, cap_certainty

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SENDER = "ioc@danang.gov.vn"
SENDER_NAME = {
    "vi": "Trung tâm Giám sát điều hành đô thị thông minh Đà Nẵng",
    "en": "Da Nang Intelligent Operations Centre",
}
CAP_CATEGORY = {
    "fire": "Fire",
    "flood": "Met",
    "landslide": "Geo",
    "traffic_accident": "Transport",
    "road_blocked": "Transport",
    "pothole": "Transport",
    "water_main_burst": "Infra",
    "power_outage": "Infra",
    "streetlight": "Infra",
    "drainage_blocked": "Infra",
    "fallen_tree": "Safety",
    "medical": "Health",
    "pollution": "Env",
    "waste": "Env",
}
VN = dt.timezone(dt.timedelta(hours=7))


def cap_time(t: dt.datetime) -> str:
    """CAP dateTime: seconds precision with an explicit offset (Đà Nẵng time)."""
    return t.astimezone(VN).replace(microsecond=0).isoformat()


def publish(
    conn: Connection,
    incident_id: int,
    *,
    actor: str,
    expires_hours: float = 24,
    headline_vi: str | None = None,
    headline_en: str | None = None,
    instruction_vi: str | None = None,
    instruction_en: str | None = None,
) -> dict[str, Any]:
    """Mark an incident as a public warning until ``expires_hours`` from now."""
    if not 0 < expires_hours <= 24 * 14:
        raise InputError("expires_hours must be between 0 and 336")
    row = store.get(conn, incident_id)
    if row["status"] in ("reported", "closed"):
        raise Conflict(f"only a verified, open incident can be published (it is {row['status']})")
    texts = {
        "headline_vi": headline_vi,
        "headline_en": headline_en,
        "instruction_vi": instruction_vi,
        "instruction_en": instruction_en,
    }
    conn.execute(
        text(
            "UPDATE incident SET public = true, cap_published_at = now(), "
            "cap_expires_at = now() + make_interval(secs => :s), version = version + 1, "
            "updated_at = now() WHERE id = :id"
        ),
        {"s": expires_hours * 3600, "id": incident_id},
    )
    store.event(
        conn,
        incident_id,
        actor,
        "published",
        {"expires_hours": expires_hours, **{k: v for k, v in texts.items() if v}},
    )
    return store.get(conn, incident_id)


def _area_polygon(conn: Connection, incident_id: int) -> str:
    """The alert area as CAP 'lat,lon' pairs: the incident's area, or 500 m around a point."""
    wkt_geom = conn.execute(
        text(
            "SELECT ST_AsGeoJSON(CASE WHEN GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON') "
            "THEN ST_ExteriorRing(ST_GeometryN(ST_SimplifyPreserveTopology(geom, 0.0002), 1)) "
            "ELSE ST_ExteriorRing(ST_Buffer(geom::geography, 500, 8)::geometry) END, 5) "
            "FROM incident WHERE id = :id"
        ),
        {"id": incident_id},
    ).scalar_one()
    import json

    coords = json.loads(wkt_geom)["coordinates"]
    return " ".join(f"{lat},{lon}" for lon, lat in coords)


def _texts(conn: Connection, incident_id: int) -> dict[str, str]:
    row = conn.execute(
        text(
            "SELECT data FROM incident_event WHERE incident_id = :i AND kind = 'published' "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"i": incident_id},
    ).first()
    return dict(row[0]) if row and row[0] else {}


def alert_xml(conn: Connection, row: dict[str, Any], base_url: str = "") -> ET.Element:
    """One CAP 1.2 ``<alert>`` element for a published incident."""
    ET.register_namespace("", CAP_NS)
    q = f"{{{CAP_NS}}}"
    cat = BY_CODE[row["category"]]
    texts = _texts(conn, row["id"])
    alert = ET.Element(q + "alert")

    def sub(parent: ET.Element, tag: str, value: str | None) -> None:
        if value:
            ET.SubElement(parent, q + tag).text = value

    sub(alert, "identifier", f"danang-twin-incident-{row['id']}-v{row['version']}")
    sub(alert, "sender", SENDER)
    sub(alert, "sent", cap_time(row["cap_published_at"]))
    sub(alert, "status", "Actual")
    sub(alert, "msgType", "Alert")
    sub(alert, "scope", "Public")
    area = _area_polygon(conn, row["id"])
    place = row.get("address") or row.get("ward") or "Đà Nẵng"
    for lang, name in (("vi", cat.name_vi), ("en", cat.name_en)):
        info = ET.SubElement(alert, q + "info")
        sub(info, "language", "vi-VN" if lang == "vi" else "en-US")
        sub(info, "category", CAP_CATEGORY.get(row["category"], "Other"))
        sub(info, "event", name)
        sub(info, "urgency", CAP_URGENCY[row["severity"]])
        sub(info, "severity", CAP_SEVERITY[row["severity"]])
        sub(info, "certainty", cap_certainty(row["status"]))
        sub(info, "effective", cap_time(row["cap_published_at"]))
        sub(info, "expires", cap_time(row["cap_expires_at"]))
        sub(info, "senderName", SENDER_NAME[lang])
        default_head = f"{name}: {place}" if lang == "vi" else f"{name} at {place}"
        sub(info, "headline", texts.get(f"headline_{lang}") or default_head)
        sub(info, "description", row["title"])
        sub(info, "instruction", texts.get(f"instruction_{lang}"))
        sub(info, "web", f"{base_url}/")
        area_el = ET.SubElement(info, q + "area")
        sub(area_el, "areaDesc", place)
        sub(area_el, "polygon", area)
    return alert


def current(conn: Connection) -> list[dict[str, Any]]:
    """Published incidents whose alert has not expired and that are not closed."""
    ids = [
        r[0]
        for r in conn.execute(
            text(
                "SELECT id FROM incident WHERE cap_published_at IS NOT NULL "
                "AND cap_expires_at > now() AND status <> 'closed' "
                "ORDER BY cap_published_at DESC"
            )
        )
    ]
    return [store.get(conn, i) for i in ids]


def to_bytes(el: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(el, encoding="utf-8")


def unpublish(conn: Connection, incident_id: int, *, actor: str) -> dict[str, Any]:
    """Cancel a current warning (it expires now)."""
    row = store.get(conn, incident_id)
    if row["cap_published_at"] is None or row["cap_expires_at"] is None:
        raise Conflict(f"incident {incident_id} has no current warning")
    conn.execute(
        text("UPDATE incident SET cap_expires_at = LEAST(cap_expires_at, now()), "
             "version = version + 1, updated_at = now() WHERE id = :id"),
        {"id": incident_id},
    )
    store.event(conn, incident_id, actor, "unpublished", {})
    return store.get(conn, incident_id)


def _area_geojson(conn: Connection, incident_id: int) -> dict[str, Any]:
    """The alert area as a GeoJSON polygon: the incident's own area, or 500 m around it."""
    import json

    return dict(json.loads(conn.execute(
        text(
            "SELECT ST_AsGeoJSON(CASE WHEN GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON') "
            "THEN geom ELSE ST_Buffer(geom::geography, 500, 8)::geometry END, 6) "
            "FROM incident WHERE id = :id"
        ),
        {"id": incident_id},
    ).scalar_one()))


def features(conn: Connection, lang: str = "vi") -> dict[str, Any]:
    """Current alerts as a GeoJSON FeatureCollection for the public pages, texts in
    ``lang`` (the other language when one is missing), times in Đà Nẵng time."""
    from twin.i18n import local_iso, t

    out = []
    for row in current(conn):
        cat = BY_CODE[row["category"]]
        texts = _texts(conn, row["id"])
        name = cat.name_vi if lang == "vi" else cat.name_en
        place = row.get("address") or row.get("ward") or "Đà Nẵng"
        other = "en" if lang == "vi" else "vi"
        headline = (texts.get(f"headline_{lang}") or texts.get(f"headline_{other}")
                    or t("warning.headline", lang, event=name, place=place))
        instruction = texts.get(f"instruction_{lang}") or texts.get(f"instruction_{other}")
        out.append({
            "type": "Feature",
            "id": row["id"],
            "geometry": _area_geojson(conn, row["id"]),
            "properties": {
                "id": row["id"],
                "identifier": f"danang-twin-incident-{row['id']}-v{row['version']}",
                "severity": CAP_SEVERITY.get(row["severity"], "Unknown"),
                "urgency": CAP_URGENCY.get(row["severity"], "Unknown"),
                "certainty": cap_certainty(row["status"]),
                "event": name,
                "category": row["category"],
                "headline": headline,
                "description": row["title"],
                "instruction": instruction,
                "area_desc": place,
                "sent": local_iso(row["cap_published_at"]),
                "expires": local_iso(row["cap_expires_at"]),
                "lang": lang,
                "cap": f"/warnings/{row['id']}.cap",
            },
        })
    return {"type": "FeatureCollection", "features": out}
