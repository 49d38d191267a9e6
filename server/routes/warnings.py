"""Public warnings as CAP 1.2: an Atom index of current alerts and each alert by id."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from server.deps import ConnDep, StaffDep
from twin import i18n
from twin.errors import NotFound
from twin.incidents import cap, store

router = APIRouter(tags=["warnings"])
ATOM = "http://www.w3.org/2005/Atom"


Headline = Annotated[str, Field(max_length=200)]
Instruction = Annotated[str, Field(max_length=5000)]


class PublishIn(BaseModel):
    expires_hours: float = 24
    headline_vi: Headline | None = None
    headline_en: Headline | None = None
    instruction_vi: Instruction | None = None
    instruction_en: Instruction | None = None


@router.post("/incidents/{incident_id}/publish")
def publish(incident_id: int, body: PublishIn, conn: ConnDep, who: StaffDep) -> dict[str, Any]:
    """Publish an incident as a public CAP warning."""
    with conn.begin():
        row = cap.publish(conn, incident_id, actor=who.username or "staff", **body.model_dump())
    return {
        "id": row["id"],
        "cap": f"/warnings/{row['id']}.cap",
        "expires": row["cap_expires_at"].isoformat(),
    }


@router.delete("/incidents/{incident_id}/publish")
def unpublish(incident_id: int, conn: ConnDep, who: StaffDep) -> dict[str, Any]:
    """Cancel an incident's public warning (it expires now)."""
    with conn.begin():
        row = cap.unpublish(conn, incident_id, actor=who.username or "staff")
    return {"id": row["id"], "expires": row["cap_expires_at"].isoformat()}


@router.get("/warnings.json")
def warnings_json(request: Request, conn: ConnDep, lang: str | None = None) -> JSONResponse:
    """Current warnings as GeoJSON: each alert's area polygon with its CAP severity,
    urgency, certainty and texts in ``lang`` (vi or en; else Accept-Language), times in
    Đà Nẵng time (+07:00)."""
    chosen = i18n.pick(lang, request.headers.get("accept-language"))
    return JSONResponse(cap.features(conn, chosen),
                        headers={"Cache-Control": "public, max-age=15",
                                 "Content-Language": chosen, "Vary": "Accept-Language"})


@router.get("/warnings.cap")
def warnings_feed(request: Request, conn: ConnDep) -> Response:
    """Current alerts: an Atom feed whose entries carry each CAP 1.2 alert in full."""
    base = str(request.base_url).rstrip("/")
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}id").text = f"{base}/warnings.cap"
    ET.SubElement(feed, f"{{{ATOM}}}title").text = "Cảnh báo Đà Nẵng / Da Nang warnings"
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = cap.cap_time(dt.datetime.now(dt.UTC))
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = cap.SENDER_NAME["en"]
    for row in cap.current(conn):
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}id").text = f"{base}/warnings/{row['id']}.cap"
        ET.SubElement(entry, f"{{{ATOM}}}title").text = row["title"]
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = cap.cap_time(row["updated_at"])
        ET.SubElement(
            entry,
            f"{{{ATOM}}}link",
            href=f"{base}/warnings/{row['id']}.cap",
            type="application/cap+xml",
        )
        content = ET.SubElement(entry, f"{{{ATOM}}}content", type="application/cap+xml")
        content.append(cap.alert_xml(conn, row, base))
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(feed, encoding="utf-8")
    return Response(
        body,
        media_type="application/atom+xml; charset=utf-8",
        headers={"Cache-Control": "public, max-age=30"},
    )


@router.get("/warnings/{incident_id}.cap")
def warning(incident_id: int, request: Request, conn: ConnDep) -> Response:
    """One current alert as a CAP 1.2 document."""
    row = store.get(conn, incident_id)
    if (row["cap_published_at"] is None or row["status"] == "closed"
            or row["cap_expires_at"] is None or row["cap_expires_at"] <= dt.datetime.now(dt.UTC)):
        raise NotFound(f"no current warning for incident {incident_id}")
    base = str(request.base_url).rstrip("/")
    return Response(
        cap.to_bytes(cap.alert_xml(conn, row, base)),
        media_type="application/cap+xml; charset=utf-8",
    )
