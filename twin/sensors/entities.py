"""The SensorThings entity sets: tables, properties (STA name → SQL), relations and the
JSON each row becomes. SQL templates use ``{a}`` for the entity's alias and
``{o}``/``{i}`` for the outer and inner side of a relation; none holds user input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twin.errors import NotFound
from twin.sensors.values import interval, iso, result_out


@dataclass(frozen=True)
class Prop:
    sql: str
    type: str  # num | str | bool | time | geom | json | result | interval
    end_sql: str | None = None  # interval end


@dataclass(frozen=True)
class Rel:
    target: str
    many: bool
    cond: str
    fk: str | None = None  # inner column equal to the outer id (fast path)


@dataclass(frozen=True)
class Entity:
    name: str  # entity set, e.g. Things
    single: str  # Thing
    table: str
    columns: str  # select list on {a}
    props: dict[str, Prop]
    rels: dict[str, Rel]
    to_json: Callable[[dict[str, Any]], dict[str, Any]]
    public: str | None = None  # what anonymous callers may see
    writable: tuple[str, ...] = field(default=())


def _j(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


def _thing(r: dict[str, Any]) -> dict[str, Any]:
    props = dict(r["properties"] or {})
    if r["kind"]:
        props["kind"] = r["kind"]
    props["public"] = r["public"]
    return {"name": r["name"], "description": r["description"], "properties": props}


def _location(r: dict[str, Any]) -> dict[str, Any]:
    return {"name": r["name"], "description": r["description"],
            "encodingType": r["encoding_type"], "location": _j(r["location"]),
            "properties": r["properties"]}


def _hist(r: dict[str, Any]) -> dict[str, Any]:
    return {"time": iso(r["time"])}


def _sensor(r: dict[str, Any]) -> dict[str, Any]:
    return {"name": r["name"], "description": r["description"],
            "encodingType": r["encoding_type"], "metadata": r["metadata"],
            "properties": r["properties"]}


def _obsprop(r: dict[str, Any]) -> dict[str, Any]:
    return {"name": r["name"], "definition": r["definition"], "description": r["description"],
            "properties": r["properties"]}


def _datastream(r: dict[str, Any]) -> dict[str, Any]:
    return {"name": r["name"], "description": r["description"],
            "unitOfMeasurement": r["unit_of_measurement"],
            "observationType": r["observation_type"],
            "observedArea": _j(r["observed_area"]),
            "phenomenonTime": interval(r["first_time"], r["last_time"]),
            "resultTime": None, "properties": r["properties"]}


def _observation(r: dict[str, Any]) -> dict[str, Any]:
    return {"phenomenonTime": interval(r["phenomenon_time"], r["phenomenon_time_end"]),
            "resultTime": iso(r["result_time"]),
            "result": result_out(r["result"], r["result_json"], r["otype"] or ""),
            "resultQuality": r["quality"], "parameters": r["parameters"]}


def _foi(r: dict[str, Any]) -> dict[str, Any]:
    return {"name": r["name"], "description": r["description"],
            "encodingType": r["encoding_type"], "feature": _j(r["feature"]),
            "properties": r["properties"]}


_BASE = {"id": Prop("{a}.id", "num"), "name": Prop("{a}.name", "str"),
         "description": Prop("{a}.description", "str"),
         "properties": Prop("{a}.properties", "json")}
_THING_PUBLIC = "(SELECT t.public FROM thing t WHERE t.id = {a}.thing_id)"
# a datastream's phenomenon time: first and last reading (min/max on the primary key)
_FIRST = "(SELECT min(o.phenomenon_time) FROM observation o WHERE o.datastream_id = {a}.id)"
_LAST = "(SELECT max(o.phenomenon_time) FROM observation o WHERE o.datastream_id = {a}.id)"

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "Things", "Thing", "thing",
            "{a}.id, {a}.name, {a}.description, {a}.properties, {a}.kind, {a}.public",
            {**_BASE, "properties/kind": Prop("{a}.kind", "str"),
             "properties/public": Prop("{a}.public", "bool")},
            {"Locations": Rel("Locations", True, "{i}.id IN (SELECT tl.location_id FROM "
                              "thing_location tl WHERE tl.thing_id = {o}.id)"),
             "HistoricalLocations": Rel("HistoricalLocations", True,
                                        "{i}.thing_id = {o}.id", "thing_id"),
             "Datastreams": Rel("Datastreams", True, "{i}.thing_id = {o}.id", "thing_id")},
            _thing, "{a}.public", ("name", "description", "properties"),
        ),
        Entity(
            "Locations", "Location", "location",
            "{a}.id, {a}.name, {a}.description, {a}.encoding_type, {a}.properties, "
            "ST_AsGeoJSON({a}.geom, 7) AS location",
            {**_BASE, "encodingType": Prop("{a}.encoding_type", "str"),
             "location": Prop("{a}.geom", "geom")},
            {"Things": Rel("Things", True, "{i}.id IN (SELECT tl.thing_id FROM thing_location "
                           "tl WHERE tl.location_id = {o}.id)"),
             "HistoricalLocations": Rel("HistoricalLocations", True,
                                        "{i}.location_id = {o}.id", "location_id")},
            _location,
            "NOT EXISTS (SELECT 1 FROM thing_location tl JOIN thing t ON t.id = tl.thing_id "
            "WHERE tl.location_id = {a}.id AND NOT t.public)",
            ("name", "description", "encodingType", "location", "properties"),
        ),
        Entity(
            "HistoricalLocations", "HistoricalLocation", "historical_location",
            "{a}.id, {a}.time", {"id": Prop("{a}.id", "num"), "time": Prop("{a}.time", "time")},
            {"Thing": Rel("Things", False, "{i}.id = {o}.thing_id"),
             "Locations": Rel("Locations", True, "{i}.id = {o}.location_id")},
            _hist, _THING_PUBLIC, ("time",),
        ),
        Entity(
            "Sensors", "Sensor", "sensor",
            "{a}.id, {a}.name, {a}.description, {a}.encoding_type, {a}.metadata, {a}.properties",
            {**_BASE, "encodingType": Prop("{a}.encoding_type", "str"),
             "metadata": Prop("{a}.metadata", "str")},
            {"Datastreams": Rel("Datastreams", True, "{i}.sensor_id = {o}.id", "sensor_id")},
            _sensor, None, ("name", "description", "encodingType", "metadata", "properties"),
        ),
        Entity(
            "ObservedProperties", "ObservedProperty", "observed_property",
            "{a}.id, {a}.name, {a}.definition, {a}.description, {a}.properties",
            {**_BASE, "definition": Prop("{a}.definition", "str")},
            {"Datastreams": Rel("Datastreams", True, "{i}.observed_property_id = {o}.id",
                                "observed_property_id")},
            _obsprop, None, ("name", "definition", "description", "properties"),
        ),
        Entity(
            "Datastreams", "Datastream", "datastream",
            "{a}.id, {a}.name, {a}.description, {a}.unit_of_measurement, {a}.observation_type, "
            "ST_AsGeoJSON({a}.observed_area, 7) AS observed_area, " + _FIRST + " AS first_time, "
            + _LAST + " AS last_time, {a}.properties",
            {**_BASE, "unitOfMeasurement": Prop("{a}.unit_of_measurement", "json"),
             "observationType": Prop("{a}.observation_type", "str"),
             "observedArea": Prop("{a}.observed_area", "geom"),
             "phenomenonTime": Prop(_FIRST, "interval", _LAST)},
            {"Thing": Rel("Things", False, "{i}.id = {o}.thing_id"),
             "Sensor": Rel("Sensors", False, "{i}.id = {o}.sensor_id"),
             "ObservedProperty": Rel("ObservedProperties", False,
                                     "{i}.id = {o}.observed_property_id"),
             "Observations": Rel("Observations", True, "{i}.datastream_id = {o}.id",
                                 "datastream_id")},
            _datastream, _THING_PUBLIC,
            ("name", "description", "unitOfMeasurement", "observationType", "observedArea",
             "properties"),
        ),
        Entity(
            "Observations", "Observation", "observation",
            "{a}.id, {a}.phenomenon_time, {a}.phenomenon_time_end, {a}.result_time, "
            "{a}.result, {a}.result_json, {a}.quality, {a}.parameters, (SELECT "
            "d.observation_type FROM datastream d WHERE d.id = {a}.datastream_id) AS otype",
            {"id": Prop("{a}.id", "num"),
             "phenomenonTime": Prop("{a}.phenomenon_time", "time"),
             "resultTime": Prop("{a}.result_time", "time"),
             "result": Prop("{a}.result", "result"),
             "resultQuality": Prop("{a}.quality", "json"),
             "parameters": Prop("{a}.parameters", "json")},
            {"Datastream": Rel("Datastreams", False, "{i}.id = {o}.datastream_id"),
             "FeatureOfInterest": Rel("FeaturesOfInterest", False, "{i}.id = {o}.foi_id")},
            _observation,
            "EXISTS (SELECT 1 FROM datastream d JOIN thing t ON t.id = d.thing_id "
            "WHERE d.id = {a}.datastream_id AND t.public)",
            ("phenomenonTime", "resultTime", "result", "resultQuality", "parameters"),
        ),
        Entity(
            "FeaturesOfInterest", "FeatureOfInterest", "feature_of_interest",
            "{a}.id, {a}.name, {a}.description, {a}.encoding_type, {a}.properties, "
            "ST_AsGeoJSON({a}.geom, 7) AS feature",
            {**_BASE, "encodingType": Prop("{a}.encoding_type", "str"),
             "feature": Prop("{a}.geom", "geom")},
            {"Observations": Rel("Observations", True, "{i}.foi_id = {o}.id", "foi_id")},
            _foi,
            "NOT EXISTS (SELECT 1 FROM datastream d JOIN thing t ON t.id = d.thing_id "
            "WHERE d.default_foi_id = {a}.id AND NOT t.public)",
            ("name", "description", "encodingType", "feature", "properties"),
        ),
    )
}
SINGULAR = {e.single: e for e in ENTITIES.values()}


def entity(name: str) -> Entity:
    e = ENTITIES.get(name)
    if e is None:
        raise NotFound(f"no entity set {name!r}; known: {', '.join(ENTITIES)}")
    return e
