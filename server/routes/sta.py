"""OGC SensorThings API 1.1 under ``/sta/v1.1`` (reads for everyone — anonymous callers
see public Things only — and writes for staff tokens and gateways' ``X-Api-Key``).

A gateway's key is scoped to what it owns (``twin.sensors.gateways``): the Things it
creates become its own (``properties.gateway``), and it may add Observations to, change
or delete only its own Things, their Datastreams and Observations (else 403). Shared
entities (Sensors, ObservedProperties, Locations, FeaturesOfInterest) it may create but
not change or delete.

Also ``POST /sta/v1.1/CreateObservations`` (dataArray batches) and
``GET /sta/v1.1/Datastreams(id)/Observations/aggregate`` (buckets computed in SQL).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection

from layers.access import is_staff
from server.deps import get_principal, read_engine
from twin.errors import InputError, NotFound
from twin.sensors import aggregate as agg
from twin.sensors import gateways, ingest, payloads, query, write
from twin.sensors.entities import ENTITIES
from twin.sensors.filters import Binder

router = APIRouter(prefix="/sta/v1.1", tags=["sensors"])
MAX_BODY = 64 * 1024 * 1024
_CONF = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
CONFORMANCE = [_CONF + c for c in (
    "datamodel", "resource-path/resource-path-to-entities", "request-data",
    "create-update-delete", "data-array/data-array",
    "create-observations-via-mqtt/observations-creation",
    "receive-updates-via-mqtt/receive-updates",
)]


class ORJSONResponse(Response):
    """JSON through orjson (fast for big observation pages)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/sta/v1.1"


def _public(request: Request) -> bool:
    """True when the caller sees public Things only (not staff)."""
    return not is_staff(get_principal(request).role)


def _writer(request: Request) -> str:
    """Staff bearer token or a gateway's ``X-Api-Key``; returns who is writing."""
    key = request.headers.get("x-api-key")
    if key:
        with request.app.state.engine.begin() as conn:
            gid = gateways.verify(conn, key)
        if gid is None:
            raise HTTPException(401, "unknown or revoked API key")
        return f"gateway:{gid}"
    principal = get_principal(request)
    if principal.anonymous:
        raise HTTPException(401, "writes need a staff token or a gateway X-Api-Key",
                            headers={"WWW-Authenticate": "Bearer"})
    if not is_staff(principal.role):
        raise HTTPException(403, "staff or gateways only")
    return principal.username or "staff"


def _gateway_name(conn: Connection, actor: str) -> str | None:
    """The writing gateway's name, or None for staff."""
    if not actor.startswith("gateway:"):
        return None
    return gateways.name_of(conn, int(actor.split(":", 1)[1])) or "?"


def _require_own(conn: Connection, gateway: str, set_name: str, ident: Any) -> None:
    """403 unless ``set_name(ident)`` is the gateway's own Thing, Datastream or Observation
    (an unknown id is left to the write itself, which answers 400 or 404)."""
    if isinstance(ident, bool) or not isinstance(ident, int) or not 0 < ident < 2**63:
        return
    exists, owner = gateways.owner(conn, set_name, ident)
    if exists and owner != gateway:
        raise HTTPException(403, f"gateway {gateway!r} does not own {set_name}({ident})")


def _ref_id(value: dict[str, Any]) -> Any:
    if value and set(value) <= {"@iot.id", "@iot.selfLink"}:
        return value.get("@iot.id")
    return None


_SETS = {"Thing": "Things", "Things": "Things", "Datastream": "Datastreams",
         "Datastreams": "Datastreams"}
_NESTED = ("Thing", "Things", "Datastream", "Datastreams", "Locations", "Observations")


def _scope(conn: Connection, gateway: str, value: Any, key: str) -> None:
    """Walk a body about to be written by a gateway: references to Things and
    Datastreams must be its own, and the new Things it holds become its own."""
    if isinstance(value, list):
        for v in value:
            _scope(conn, gateway, v, key)
        return
    if not isinstance(value, dict):
        return
    ref = _ref_id(value)
    if ref is not None:
        if key in _SETS:
            _require_own(conn, gateway, _SETS[key], ref)
        return
    if key in ("Thing", "Things"):
        props = value.get("properties")
        if props is None or isinstance(props, dict):
            value["properties"] = {**(props or {}), gateways.OWNER: gateway}
    for k in _NESTED:
        if k in value:
            _scope(conn, gateway, value[k], k)


def _scope_path(conn: Connection, gateway: str, segments: list[str], body: Any) -> None:
    """A gateway's create at ``segments`` (one entity set, or a set under a parent)."""
    if len(segments) == 2:
        parent, pid = _single(segments[:1])
        if parent in ("Things", "Datastreams"):
            _require_own(conn, gateway, parent, pid)
        _scope(conn, gateway, body, segments[1])
    elif segments:
        _scope(conn, gateway, body, segments[0])


async def _json(request: Request) -> Any:
    size = request.headers.get("content-length")
    if size and size.isdigit() and int(size) > MAX_BODY:
        raise _too_large(f"body of {size} bytes exceeds {MAX_BODY} bytes")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise _too_large(f"body exceeds {MAX_BODY} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}") from None


def _too_large(message: str) -> HTTPException:
    return HTTPException(413, message)


@router.get("", summary="SensorThings service root")
@router.get("/", include_in_schema=False)
def service_root(request: Request) -> ORJSONResponse:
    base = base_url(request)
    return ORJSONResponse({
        "value": [{"name": n, "url": f"{base}/{n}"} for n in ENTITIES],
        "serverSettings": {
            "conformance": CONFORMANCE,
            _CONF + "create-observations-via-mqtt/observations-creation": {
                "endpoints": [request.app.state.settings.mqtt_url]},
        },
    })


@router.post("/CreateObservations", status_code=201,
             summary="Create observations in dataArray batches (idempotent)")
async def create_observations(request: Request) -> ORJSONResponse:
    """Body: ``[{"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime", "result"],
    "dataArray": [[t, v], …]}, …]``. Answers the selfLink of every observation, in order
    (a resend answers the already stored one). Any bad element: 400 and nothing stored."""
    actor = await run_in_threadpool(_writer, request)
    body = await _json(request)
    base = base_url(request)

    def work() -> list[str]:
        try:
            raw = payloads.parse_create_observations(body)
        except payloads.TooLarge as exc:
            raise _too_large(str(exc)) from None
        with request.app.state.engine.begin() as conn:
            gateway = _gateway_name(conn, actor)
            if gateway is not None:
                foreign = gateways.foreign_datastreams(
                    conn, gateway, sorted({r.datastream_id for r in raw}))
                if foreign:
                    raise HTTPException(403, f"gateway {gateway!r} does not own Datastream(s) "
                                        f"{', '.join(map(str, foreign[:10]))}: nothing stored")
            res = ingest.ingest(conn, raw, via="http", want_ids=True)
        return [f"{base}/Observations({i})" for i in res.ids]

    links = await run_in_threadpool(work)
    return ORJSONResponse(links, status_code=201, headers={"X-Twin-Actor": actor[:64]})


@router.get("/Datastreams({datastream_id})/Observations/aggregate",
            summary="Observations aggregated in time buckets")
def aggregate(
    request: Request,
    datastream_id: int,
    interval: str = "15min",
    fn: str = "avg,min,max,count",
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
) -> ORJSONResponse:
    """``interval`` (30s, 15min, 1h, 1d, PT15M), ``fn`` (avg, min, max, sum, count,
    stddev, first, last), ``from`` / ``to`` (ISO 8601). Default: the last 24 h of data."""
    with read_engine(request).connect() as conn:  # a healthy replica when configured
        out = agg.aggregate(conn, datastream_id, interval=interval, fn=fn, start=from_,
                            end=to, public_only=_public(request))
    return ORJSONResponse(out)


@router.get("/{path:path}", summary="SensorThings entities, navigation and query options")
def read(request: Request, path: str) -> Response:
    segments = [s for s in path.split("/") if s]
    anon = _public(request)
    b = Binder()
    opts = query.parse_options(dict(request.query_params))
    base = base_url(request)
    with read_engine(request).connect() as conn:  # a healthy replica when configured
        tgt = query.resolve(conn, segments, b, anon)
        out = query.read(conn, tgt, opts, b, anon=anon, base=base)
    if "$value" in out:
        v = out["$value"]
        return Response("" if v is None else str(v), media_type="text/plain")
    if out.pop("_more", False):
        url = request.url.include_query_params(**{"$skip": opts.skip + opts.top,
                                                  "$top": opts.top})
        out["@iot.nextLink"] = str(url)
    return ORJSONResponse(out)


def _single(segments: list[str]) -> tuple[str, int]:
    if len(segments) != 1:
        raise NotFound("address one entity, e.g. Things(1)")
    m = query._SEG.match(segments[0])
    if m is None or m.group(1) not in ENTITIES or not m.group(2):
        raise NotFound(f"{segments[0]!r} is not an entity address like Things(1)")
    if int(m.group(2)) > 2**63 - 1:
        raise NotFound(f"{segments[0]} not found")
    return m.group(1), int(m.group(2))


def _entity(request: Request, set_name: str, ident: int) -> dict[str, Any]:
    b = Binder()
    with request.app.state.engine.connect() as conn:
        tgt = query.resolve(conn, [f"{set_name}({ident})"], b, False)
        return query.read(conn, tgt, query.Options(), b, anon=False, base=base_url(request))


_LINKS = {("Things", "Locations"): "thing", ("Things", "Datastreams"): "thing",
          ("Things", "HistoricalLocations"): "thing", ("Locations", "Things"): "location",
          ("Sensors", "Datastreams"): "sensor",
          ("ObservedProperties", "Datastreams"): "observedproperty"}


@router.post("/{path:path}", status_code=201, summary="Create an entity (deep insert)")
async def create(request: Request, path: str) -> ORJSONResponse:
    actor = await run_in_threadpool(_writer, request)
    body = await _json(request)
    segments = [s for s in path.split("/") if s]

    def work() -> tuple[str, int]:
        with request.app.state.engine.begin() as conn:
            gateway = _gateway_name(conn, actor)
            if gateway is not None:
                _scope_path(conn, gateway, segments, body)
            if len(segments) == 1 and segments[0] in ENTITIES:
                set_name = segments[0]
                if set_name == "Observations":
                    return set_name, write.create_observation(conn, body)
                return set_name, write.create(conn, set_name, body)
            if len(segments) == 2:
                parent, pid = _single(segments[:1])
                set_name = segments[1]
                query.resolve(conn, segments[:1], Binder(), False)
                if (parent, set_name) == ("Datastreams", "Observations"):
                    return set_name, write.create_observation(conn, body, pid)
                key = _LINKS.get((parent, set_name))
                if key is not None:
                    return set_name, write.create(conn, set_name, body, "body", {key: pid})
            raise NotFound(f"cannot create entities at {path}")

    set_name, ident = await run_in_threadpool(work)
    out = await run_in_threadpool(_entity, request, set_name, ident)
    return ORJSONResponse(out, status_code=201, headers={"Location": out["@iot.selfLink"]})


@router.patch("/{path:path}", summary="Update an entity")
async def update(request: Request, path: str) -> ORJSONResponse:
    actor = await run_in_threadpool(_writer, request)
    body = await _json(request)
    set_name, ident = _single([s for s in path.split("/") if s])

    def work() -> None:
        with request.app.state.engine.begin() as conn:
            gateway = _gateway_name(conn, actor)
            if gateway is not None:
                _own_target(conn, gateway, set_name, ident)
                if isinstance(body, dict):
                    props = body.get("properties")
                    if set_name == "Things" and isinstance(props, dict):
                        body["properties"] = {**props, gateways.OWNER: gateway}  # still its own
                    for k in _NESTED:
                        if k in body:
                            _scope(conn, gateway, body[k], k)
            write.update(conn, set_name, ident, body)

    await run_in_threadpool(work)
    return ORJSONResponse(await run_in_threadpool(_entity, request, set_name, ident))


@router.delete("/{path:path}", summary="Delete an entity (and what depends on it)")
def delete(request: Request, path: str) -> Response:
    actor = _writer(request)
    set_name, ident = _single([s for s in path.split("/") if s])
    with request.app.state.engine.begin() as conn:
        gateway = _gateway_name(conn, actor)
        if gateway is not None:
            _own_target(conn, gateway, set_name, ident)
        write.delete(conn, set_name, ident)
    return Response(status_code=200)


def _own_target(conn: Connection, gateway: str, set_name: str, ident: int) -> None:
    """A gateway may change or delete only its own Things, Datastreams, Observations."""
    if set_name not in ("Things", "Datastreams", "Observations"):
        raise HTTPException(403, f"gateways cannot change or delete {set_name}")
    _require_own(conn, gateway, set_name, ident)
