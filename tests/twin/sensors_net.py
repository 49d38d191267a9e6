"""A small, known sensor network for the sensor tests (each call makes a fresh one)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine

from twin.sensors import ingest, payloads, write
from twin.sensors.values import COUNT, MEASUREMENT

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
LEVEL_UOM = {"name": "metre", "symbol": "m", "definition": "http://qudt.org/vocab/unit/M"}


@dataclass(frozen=True)
class Net:
    tag: str
    tower: int  # public Thing (flood tower)
    plant: int  # private Thing (water-quality station)
    level: int  # OM_Measurement datastream on the tower
    count: int  # OM_CountObservation datastream on the tower
    turbidity: int  # datastream on the private plant
    sensor: int
    prop: int


def make_net(engine: Engine) -> Net:
    tag = uuid.uuid4().hex[:6]
    with engine.begin() as c:
        sensor = write.create(c, "Sensors", {"name": f"radar {tag}", "encodingType": "text/html",
                                            "metadata": "https://example.org/radar"})
        prop = write.create(c, "ObservedProperties", {
            "name": f"water level {tag}", "definition": "http://example.org/level"})

        def ds(name: str, otype: str = MEASUREMENT) -> dict:
            return {"name": name, "unitOfMeasurement": LEVEL_UOM, "observationType": otype,
                    "Sensor": {"@iot.id": sensor}, "ObservedProperty": {"@iot.id": prop}}

        tower = write.create(c, "Things", {
            "name": f"Tower {tag}", "description": "flood tower on the Hàn",
            "properties": {"kind": "flood_tower", "owner": "DONRE", "height": 12},
            "Locations": [{"name": f"Dragon Bridge {tag}", "encodingType":
                           "application/geo+json", "location": {
                               "type": "Point", "coordinates": [108.2270, 16.0612]}}],
            "Datastreams": [ds(f"level {tag}"), ds(f"count {tag}", COUNT)]})
        plant = write.create(c, "Things", {
            "name": f"Plant {tag}", "properties": {"kind": "water_quality", "public": False},
            "Locations": [{"name": f"Cầu Đỏ {tag}", "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": [108.1875, 15.9985]}}],
            "Datastreams": [ds(f"turbidity {tag}")]})
        ids = dict(c.exec_driver_sql(
            "SELECT name, id FROM datastream WHERE name LIKE %(t)s", {"t": f"% {tag}"}).all())
    return Net(tag, tower, plant, ids[f"level {tag}"], ids[f"count {tag}"],
               ids[f"turbidity {tag}"], sensor, prop)


def series(ds: int, values: list[float], start: dt.datetime = T0,
           step: dt.timedelta = dt.timedelta(minutes=1)) -> list[payloads.RawObs]:
    return [payloads.RawObs(ds, start + k * step, None, None, v) for k, v in enumerate(values)]


def put(engine: Engine, raw: list[payloads.RawObs]) -> ingest.IngestResult:
    with engine.begin() as c:
        return ingest.ingest(c, raw, via="test")
