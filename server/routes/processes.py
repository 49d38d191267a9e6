"""What-if analyses as OGC API – Processes (Part 1: Core, JSON, job list, dismiss).

``GET /processes`` lists flood, closure, outage (and rain, river when their modules are
installed); ``GET /processes/{id}`` describes one, its inputs as JSON Schema from the
same pydantic models as ``POST /scenarios/*``; ``POST /processes/{id}/execution`` runs
it: at once (the answer of the ``/scenarios/*`` shortcut) or, with ``Prefer:
respond-async``, as a job (:mod:`twin.jobs`) followed at ``/jobs/{jobId}``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from sqlalchemy import Connection

from layers.access import is_staff
from server.auth import Principal
from server.deps import ConnDep, PrincipalDep, SettingsDep, StaffDep
from server.errors import error_response
from server.routes import scenarios
from twin import i18n, jobs
from twin.errors import InputError, NotFound
from twin.settings import Settings

router = APIRouter(tags=["processes"])

EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
CONFORMANCE = jobs.CONFORMANCE
VERSION = "1.0.0"
SWEEP_WAIT_S = 5.0
Run = Callable[[Connection, Settings, Any, Principal, jobs.Progress], dict[str, Any]]
JobId = Annotated[str, Path(max_length=100)]
ProcessId = Annotated[str, Path(max_length=50)]


@dataclass(frozen=True)
class Process:
    """A what-if: its id (titles ``process.<id>.*`` in :mod:`twin.i18n`), its inputs
    model and how it runs."""

    id: str
    model: type[BaseModel]
    run: Run


def _include(values: Sequence[str] | None) -> str | None:
    return ",".join(values) if values else None


class FloodInputs(scenarios.FloodIn):
    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")
    include: list[Literal["features", "geometry"]] | None = Field(
        default=None, max_length=2, description="add the affected buildings and roads "
        "(features) and/or the flooded outline (geometry)")


class ClosureInputs(scenarios.ClosureIn):
    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")


class OutageInputs(scenarios.OutageIn):
    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")


def _flood(conn: Connection, settings: Settings, body: FloodInputs, who: Principal,
           progress: jobs.Progress) -> dict[str, Any]:
    progress(0.05, "flooding the DEM")
    return scenarios.flood(body, conn, settings, who, Response(), _include(body.include))


def _closure(conn: Connection, settings: Settings, body: ClosureInputs, who: Principal,
             progress: jobs.Progress) -> dict[str, Any]:
    progress(0.05, "routing before and after")
    return scenarios.close_roads(body, conn, who, Response())


def _outage(conn: Connection, settings: Settings, body: OutageInputs, who: Principal,
            progress: jobs.Progress) -> dict[str, Any]:
    progress(0.05, "tracing the network")
    return scenarios.utility_outage(body, conn, who, Response())


PROCESSES: dict[str, Process] = {
    "flood": Process("flood", FloodInputs, _flood),
    "closure": Process("closure", ClosureInputs, _closure),
    "outage": Process("outage", OutageInputs, _outage),
}


def _register_rain() -> None:
    """Rain floods (issue 16), when ``twin.scenarios.rain`` and its route exist."""
    try:
        rain_route = importlib.import_module("server.routes.rain")
    except ModuleNotFoundError as exc:
        if exc.name in ("server.routes.rain", "twin.scenarios.rain"):
            return  # not installed
        raise
    from twin.scenarios import store
    from twin.scenarios.rain import RainParams, run_rain

    class RainInputs(rain_route.RainIn):  # type: ignore[name-defined]
        include: list[Literal["features", "geometry", "depth_classes"]] | None = Field(
            default=None, max_length=3, description="add the affected buildings and roads "
            "(features), the flooded outline (geometry), the flooded land by depth class "
            "(depth_classes)")

    def run(conn: Connection, settings: Settings, body: RainInputs, who: Principal,
            progress: jobs.Progress) -> dict[str, Any]:
        # as POST /scenarios/rain, with the progress callback run_rain takes
        inc = set(body.include or ())
        params = RainParams(
            rain_mm=body.rain_mm, hours=body.hours,
            hyetograph=tuple(body.hyetograph) if body.hyetograph is not None else None,
            interval_h=body.interval_h, drainage_mm_per_h=body.drainage_mm_per_h,
            sea_level_m=body.sea_level_m, antecedent=body.antecedent, dem=body.dem,
            impassable_depth_m=body.impassable_depth_m, name=body.name)
        with conn.begin():
            answer = run_rain(conn, settings, params, progress, created_by=who.username,
                              save=body.save, public=body.public,
                              features="features" in inc,
                              depth_classes="depth_classes" in inc)
            if "geometry" in inc and answer.get("id") is not None:
                answer["geometry"] = store.get(conn, answer["id"])["geometry"]
        return answer

    PROCESSES["rain"] = Process("rain", RainInputs, run)


def _register_river() -> None:
    """River floods (issue 16), when ``server.routes.river`` (and the model it imports)
    exist: the route's request model ``RiverIn`` and its handler ``river``, called with
    the parameters it names (body, conn, settings, who, response, include)."""
    try:
        river_route = importlib.import_module("server.routes.river")
    except ModuleNotFoundError as exc:
        if exc.name in ("server.routes.river", "twin.scenarios.river"):
            return  # not written yet
        raise
    model = getattr(river_route, "RiverIn", None)
    handler = getattr(river_route, "river", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel) and callable(handler)):
        return
    params = inspect.signature(handler).parameters

    class RiverInputs(model):  # type: ignore[misc, valid-type]
        model_config = ConfigDict(allow_inf_nan=False, extra="forbid")

    inputs: type[BaseModel] = RiverInputs
    if "include" in params:  # the route's include query parameter as an input (a list)
        inputs = create_model(
            "RiverInputs", __base__=RiverInputs,
            include=(list[str] | None, Field(default=None, max_length=5)))

    def run(conn: Connection, settings: Settings, body: Any, who: Principal,
            progress: jobs.Progress) -> dict[str, Any]:
        progress(0.05, "river flood")
        given = {"body": body, "conn": conn, "settings": settings, "who": who,
                 "response": Response(),
                 "include": _include(getattr(body, "include", None))}
        kwargs = {name: given[name] for name in params if name in given}
        return handler(**kwargs)  # type: ignore[no-any-return]

    PROCESSES["river"] = Process("river", inputs, run)


_register_rain()
_register_river()


# -- documents -------------------------------------------------------------------------

def _base(request: Request) -> str:
    return str(request.base_url)


def _link(href: str, rel: str, title: str, type_: str = "application/json") -> dict[str, str]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """A JSON Schema with its ``$ref``s to ``$defs`` replaced by their definitions."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.rsplit("/", 1)[1]], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def _lang(request: Request) -> str:
    """``lang`` (vi, en) or Accept-Language; Vietnamese by default."""
    return i18n.pick(request.query_params.get("lang"), request.headers.get("accept-language"))


def _summary(p: Process, base: str, lang: str) -> dict[str, Any]:
    return {
        "id": p.id,
        "title": i18n.t(f"process.{p.id}.title", lang),
        "description": i18n.t(f"process.{p.id}.description", lang),
        "version": VERSION,
        "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
        "outputTransmission": ["value"],
        "links": [
            _link(f"{base}processes/{p.id}", "self", "Process description"),
            _link(f"{base}processes/{p.id}/execution",
                  "http://www.opengis.net/def/rel/ogc/1.0/execute", "Execute"),
        ],
    }


def _description(p: Process, base: str, lang: str) -> dict[str, Any]:
    schema = p.model.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    inputs = {}
    for name, prop in schema.get("properties", {}).items():
        prop = _inline(prop, defs)
        inputs[name] = {
            "title": prop.pop("title", name),
            "description": prop.pop("description", ""),
            "schema": prop,
            "minOccurs": 1 if name in required else 0,
            "maxOccurs": 1,
        }
    return {
        **_summary(p, base, lang),
        "inputs": inputs,
        "outputs": {
            "result": {
                "title": "Scenario",
                "description": "the scenario as POST /scenarios/" + p.id + " answers it: "
                "its id, summary and links (GeoJSON features when asked)",
                "schema": {"type": "object", "contentMediaType": "application/json"},
            },
        },
    }


def _process(process_id: str) -> Process:
    p = PROCESSES.get(process_id)
    if p is None:
        raise NotFound(f"no process {process_id!r}; processes: {', '.join(PROCESSES)}")
    return p


def _no_such(request: Request, what: str, kind: str) -> Response:
    r = error_response(request, 404, "NotFound", what)
    return _typed(r, kind, request)


def _typed(response: Response, kind: str, request: Request) -> Response:
    """The error body with the spec's exception ``type`` URI added."""
    import json

    body = json.loads(bytes(response.body))
    body["type"] = EXC + kind
    headers = {k: v for k, v in response.headers.items()
               if k.lower() not in ("content-length", "content-type")}
    return JSONResponse(body, status_code=response.status_code, headers=headers)


@router.get("/processes", summary="Processes (what-if analyses)")
def list_processes(request: Request) -> dict[str, Any]:
    """The what-if analyses this server runs as OGC API – Processes."""
    base = _base(request)
    return {
        "processes": [_summary(p, base, _lang(request)) for p in PROCESSES.values()],
        "links": [_link(f"{base}processes", "self", "The processes")],
    }


@router.get("/processes/{process_id}", summary="Process description")
def describe_process(process_id: ProcessId, request: Request) -> Response:
    """One process: its inputs (JSON Schema), outputs and how it can run."""
    p = PROCESSES.get(process_id)
    if p is None:
        return _no_such(request, f"no process {process_id!r}; processes: "
                        f"{', '.join(PROCESSES)}", "no-such-process")
    return JSONResponse(_description(p, _base(request), _lang(request)))


def _fields(exc: ValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors()[:50]:
        loc = ["inputs", *(str(x) for x in err.get("loc", ()))]
        names = [x for x in loc[1:] if not x.isdigit()] or loc
        out.append({"name": names[-1], "loc": ".".join(loc),
                    "message": str(err.get("msg", "invalid"))[:300]})
    return out


def _async(prefer: str | None) -> bool:
    return any(p.strip().split(";")[0].strip().lower() == "respond-async"
               for p in (prefer or "").split(","))


@router.post("/processes/{process_id}/execution", summary="Execute a process",
             status_code=200)
def execute(
    process_id: ProcessId, request: Request, conn: ConnDep, settings: SettingsDep,
    who: StaffDep,
    body: Annotated[dict[str, Any], Body(description='{"inputs": {...}}: the inputs of '
                                         'the process (see its description)')],
    prefer: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Run a what-if: with ``Prefer: respond-async`` a job (201, ``Location:
    /jobs/{jobId}``, its status), otherwise at once (200, the scenario)."""
    p = PROCESSES.get(process_id)
    if p is None:
        return _no_such(request, f"no process {process_id!r}; processes: "
                        f"{', '.join(PROCESSES)}", "no-such-process")
    unknown = set(body) - {"inputs", "outputs", "response", "subscriber"}
    if unknown:
        raise InputError(f"an execute request has inputs, outputs, response, not "
                         f"{', '.join(sorted(unknown))}")
    raw_inputs = body.get("inputs", {})
    if not isinstance(raw_inputs, dict):
        raise InputError("inputs must be an object of input id to value")
    mode = body.get("response", "raw")
    if mode not in ("raw", "document"):
        raise InputError("response is raw or document")
    try:
        inputs = p.model.model_validate(raw_inputs)
    except ValidationError as exc:
        fields = _fields(exc)
        names = ", ".join(dict.fromkeys(f["loc"] for f in fields))
        return error_response(request, 400, "InvalidInput", f"invalid input: {names}"[:500],
                              fields=fields)
    base = _base(request)
    if _async(prefer):
        runner: jobs.JobRunner = request.app.state.jobs
        stored = inputs.model_dump(mode="json", exclude_unset=True)

        def work(c: Connection, progress: jobs.Progress) -> dict[str, Any]:
            return jsonable_encoder(p.run(c, settings, inputs, who, progress))  # type: ignore[no-any-return]

        try:
            row = runner.submit(p.id, stored, who.username, work)
        except jobs.Stopping as exc:
            return error_response(request, 503, "ServiceUnavailable", str(exc),
                                  headers={"Retry-After": "5"})
        info = _status(row, base, _lang(request))
        return JSONResponse(info, status_code=201, headers={
            "Location": f"{base}jobs/{row['id']}", "Preference-Applied": "respond-async"})
    answer = p.run(conn, settings, inputs, who, lambda f, m: None)
    out = {"result": answer} if mode == "document" else answer
    headers = {}
    if answer.get("id") is not None:
        headers["Link"] = f'<{base}scenarios/{answer["id"]}>; rel="related"'
    return JSONResponse(jsonable_encoder(out), headers=headers)


# -- jobs ------------------------------------------------------------------------------

def _status(row: dict[str, Any], base: str, lang: str) -> dict[str, Any]:
    info = jobs.status_info(row, lang)
    links = [_link(f"{base}jobs/{row['id']}", "self", "Job status")]
    if row["status"] == "successful":
        links.append(_link(f"{base}jobs/{row['id']}/results",
                           "http://www.opengis.net/def/rel/ogc/1.0/results", "Results"))
    if row.get("scenario_id") is not None:
        links.append(_link(f"{base}scenarios/{row['scenario_id']}", "related",
                           "The stored scenario"))
    info["links"] = links
    return info


def _signed_in(who: Principal, request: Request) -> str | None:
    """Whose jobs the caller may see: None for staff (all), else their own name. Waits
    (briefly) for the startup check that fails the jobs of servers that died."""
    runner = getattr(request.app.state, "jobs", None)
    if runner is not None:
        runner.swept.wait(SWEEP_WAIT_S)
    if who.anonymous:
        from fastapi import HTTPException

        raise HTTPException(401, "sign in required", headers={"WWW-Authenticate": "Bearer"})
    return None if is_staff(who.role) else who.username


@router.get("/jobs", summary="Jobs")
def list_jobs(
    request: Request, conn: ConnDep, who: PrincipalDep,
    process_id: Annotated[list[str] | None, Query(alias="processID", max_length=20)] = None,
    status: Annotated[list[str] | None, Query(max_length=5)] = None,
    limit: Annotated[int, Query(ge=1, le=jobs.MAX_LIST)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Jobs newest first, filtered by process (``processID``) and ``status``; staff see
    every job, others their own."""
    owner = _signed_in(who, request)
    procs = [x for v in process_id or () for x in v.split(",") if x]
    states = [x for v in status or () for x in v.split(",") if x]
    rows = jobs.list_(conn, owner=owner, processes=procs or None, statuses=states or None,
                      limit=limit, offset=offset)
    base = _base(request)
    lang = _lang(request)
    links = [_link(str(request.url), "self", "This list")]
    if len(rows) == limit:
        links.append(_link(str(request.url.include_query_params(offset=offset + limit)),
                           "next", "The next page"))
    return {"jobs": [_status(r, base, lang) for r in rows], "links": links}


@router.get("/jobs/{job_id}", summary="Job status")
def job_status(job_id: JobId, request: Request, conn: ConnDep, who: PrincipalDep) -> Response:
    """A job's status: accepted, running, successful, failed; its progress and times."""
    try:
        row = jobs.get(conn, job_id, owner=_signed_in(who, request))
    except NotFound as exc:
        return _no_such(request, str(exc), "no-such-job")
    return JSONResponse(_status(row, _base(request), _lang(request)))


@router.get("/jobs/{job_id}/results", summary="Job results")
def job_results(job_id: JobId, request: Request, conn: ConnDep, who: PrincipalDep) -> Response:
    """The answer of a successful job (the scenario, as ``POST /scenarios/*`` answers it,
    with a link to the stored scenario); 404 ``result-not-ready`` before it is done, the
    job's error when it failed."""
    try:
        row = jobs.get(conn, job_id, owner=_signed_in(who, request), with_result=True)
    except NotFound as exc:
        return _no_such(request, str(exc), "no-such-job")
    if row["status"] == "failed":
        err = row.get("error") or {}
        status = int(err.get("status", 500))
        text = jobs.text_of(str(err.get("description") or row.get("message") or "failed"),
                            _lang(request))
        return error_response(request, status, str(err.get("code", "JobFailed")), str(text))
    if row["status"] != "successful":
        return _typed(error_response(request, 404, "NotFound",
                                     f"job {job_id} is {row['status']}; no results yet"),
                      "result-not-ready", request)
    answer = dict(row["result"] or {})
    base = _base(request)
    headers = {}
    if row.get("scenario_id") is not None:
        links = dict(answer.get("links") or {})
        links["scenario"] = f"/scenarios/{row['scenario_id']}"
        answer["links"] = links
        headers["Link"] = f'<{base}scenarios/{row["scenario_id"]}>; rel="related"'
    return JSONResponse(answer, headers=headers)


@router.delete("/jobs/{job_id}", summary="Dismiss a job")
def dismiss_job(job_id: JobId, request: Request, conn: ConnDep, who: PrincipalDep) -> Response:
    """Cancel a queued or running job (it stops at its next progress step and keeps
    nothing) or forget a finished one: its record is removed."""
    owner = _signed_in(who, request)
    try:
        with conn.begin():
            row = jobs.dismiss(conn, job_id, owner=owner)
    except NotFound as exc:
        return _no_such(request, str(exc), "no-such-job")
    info = _status(row, _base(request), _lang(request))
    info["links"] = [_link(f"{_base(request)}jobs", "up", "The job list")]
    return JSONResponse(info)
