"""Search ranks like a map on the real OSM core of Hải Châu: the street or place a
person means is in the top 3 (streets before alleys, "Đường X" for "x")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from layers.catalog import Catalog, load_catalog
from server.routes.search import search
from twin.ingest.osm import import_osm
from twin.progress import NullReporter

TABLES = ("road_segment", "road_node", "building", "facility", "utility_edge",
          "utility_node", "land_cover")


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for t in TABLES:
            conn.execute(text(f"DELETE FROM {t} WHERE source = 'osm'"))


@pytest.fixture(scope="module")
def osm(engine: Engine, danang: Path, settings) -> Iterator[Catalog]:  # noqa: ANN001
    _clear(engine)
    with engine.begin() as conn:
        import_osm(conn, danang / "osm_hai_chau_core" / "map.osm", reporter=NullReporter())
    try:
        yield load_catalog(settings.layers_file)
    finally:
        _clear(engine)


def top(engine: Engine, catalog: Catalog, q: str, n: int = 3) -> list[str]:
    with engine.connect() as conn:
        return [i["name_vi"] for i in search(conn, catalog, q, None, n)]


@pytest.mark.parametrize(("q", "want"), [
    ("hoang dieu", "Đường Hoàng Diệu"),
    ("Hoàng Diệu", "Đường Hoàng Diệu"),
    ("nguyen van linh", "Đường Nguyễn Văn Linh"),
    ("trung nu vuong", "Đường Trưng Nữ Vương"),
    ("Nguyễn Tri Phương", "Đường Nguyễn Tri Phương"),
    ("le dinh ly", "Đường Lê Đình Lý"),
    ("ong ich khiem", "Đường Ông Ích Khiêm"),
    ("cong vien apec", "Công Viên APEC"),
    ("ho thac gian", "Hồ Thạc Gián"),
    ("cau rong", "Cầu Rồng"),
])
def test_named_streets_and_places_are_in_the_top_3(engine, osm, q, want):
    got = top(engine, osm, q)
    assert want in got, got


def test_the_street_comes_before_its_alleys(engine, osm):
    got = top(engine, osm, "hoang dieu", 10)
    assert got[0] == "Đường Hoàng Diệu", got
    alleys = [i for i, name in enumerate(got) if name.lower().startswith(("kiệt", "hẻm"))]
    assert all(i > 0 for i in alleys)
