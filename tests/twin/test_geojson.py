"""The one GeoJSON validator and bbox parser (twin/geojson.py) every route uses."""

from __future__ import annotations

import pytest

from layers.errors import InvalidFilter
from twin.errors import InputError
from twin.geojson import parse_bbox, read_geometry

BOWTIE = {"type": "Polygon", "coordinates": [[[108.2, 16], [108.3, 16.1], [108.3, 16],
                                              [108.2, 16.1], [108.2, 16]]]}


@pytest.mark.parametrize(("value", "words"), [
    (None, "GeoJSON geometry object"),
    ({"type": "Pointy", "coordinates": [1, 2]}, "not accepted"),
    ({"type": "Point", "coordinates": [1, float("nan")]}, "finite"),
    ({"type": "Point", "coordinates": [1, 2, 3]}, "2-D"),
    ({"type": "Point", "coordinates": [True, 2]}, "arrays of positions"),
    ({"type": "LineString", "coordinates": [[108.2, 16]]}, "malformed"),
    ({"type": "Polygon", "coordinates": []}, "arrays of positions"),
    ({"type": "Point", "coordinates": [200, 16]}, "outside lon"),
    (BOWTIE, "invalid: Self-intersection"),
    ({"type": "GeometryCollection", "geometries": [
        {"type": "GeometryCollection", "geometries": []}]}, "nested"),
    ({"type": "LineString", "coordinates": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}, "positions"),
])
def test_bad_geometries_are_refused_with_a_reason(value, words) -> None:
    with pytest.raises(InputError, match=words):
        read_geometry(value)


def test_deeply_nested_coordinates_do_not_exhaust_the_stack() -> None:
    deep: list = [108.2, 16.0]
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(InputError, match="2-D|positions"):
        read_geometry({"type": "MultiPolygon", "coordinates": deep})


def test_options() -> None:
    feature = {"type": "Feature", "properties": {}, "geometry": {
        "type": "Point", "coordinates": [108.2, 16.05, 12.0]}}
    assert read_geometry(feature, allow_z=True).coords[0] == (108.2, 16.05)  # height dropped
    assert read_geometry(BOWTIE, repair=True).is_valid
    with pytest.raises(InputError, match="outside the city"):
        read_geometry({"type": "Point", "coordinates": [2.35, 48.85]}, city=True)
    with pytest.raises(InputError, match="not accepted"):
        read_geometry(BOWTIE, types=("Point",))
    with pytest.raises(InputError, match="more than 3 positions"):
        read_geometry(BOWTIE, max_vertices=3)
    with pytest.raises(InvalidFilter):  # the caller's error class
        read_geometry(None, error=InvalidFilter)


@pytest.mark.parametrize(("text", "box"), [
    ("108.1,16,108.3,16.2", (108.1, 16.0, 108.3, 16.2)),
    ("108.1,16,0,108.3,16.2,50", (108.1, 16.0, 108.3, 16.2)),
])
def test_bbox(text: str, box: tuple) -> None:
    assert parse_bbox(text) == box


@pytest.mark.parametrize("text", ["", "1,2,3", "a,b,c,d", "1,2,3,nan", "3,0,1,1", "0,-91,1,1",
                                  "-181,0,1,1", "1,2,3,4,5"])
def test_bad_bbox(text: str) -> None:
    with pytest.raises(InputError, match="bbox"):
        parse_bbox(text)
