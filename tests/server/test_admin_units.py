"""Admin units over time: the 2025 merge as lineage rows, and the unit at a point on a day."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from server.app import create_app
from twin.admin import lineage_rows, load_lineage

SRC = "test-admin-units"
# a district abolished on 2025-07-01 and two of the wards that replaced it (in the demo's codes)
UNITS = [
    ("district", "district-hai-chau", "Quận Hải Châu", None, "2025-07-01",
     (108.20, 16.03, 108.24, 16.08)),
    ("ward", "ward-hai-chau", "Phường Hải Châu", "2025-07-01", None,
     (108.20, 16.055, 108.24, 16.08)),
    ("ward", "ward-hoa-cuong", "Phường Hòa Cường", "2025-07-01", None,
     (108.20, 16.03, 108.24, 16.055)),
]


@pytest.fixture(scope="module")
def client(settings, engine: Engine) -> Iterator[TestClient]:  # noqa: ANN001
    with engine.begin() as conn:
        for level, code, name, vf, vt, (w, s, e, n) in UNITS:
            conn.execute(text(
                "INSERT INTO admin_area (level, code, name_vi, valid_from, valid_to, geom, source,"
                " source_id) VALUES (:l, :c, :n, CAST(:vf AS date), CAST(:vt AS date), "
                "ST_Multi(ST_MakeEnvelope(:w, :s, :e, :nn, 4326)), :src, :c)"),
                {"l": level, "c": code, "n": name, "vf": vf, "vt": vt, "w": w, "s": s, "e": e,
                 "nn": n, "src": SRC})
        load_lineage(conn)
    try:
        with TestClient(create_app(settings)) as c:
            yield c
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM admin_area WHERE source = :s"), {"s": SRC})
            conn.execute(text("DELETE FROM admin_lineage"))


def test_the_carried_merge_facts_become_rows() -> None:
    rows = lineage_rows()
    olds = {r["old_name_vi"]: r["new_name_vi"] for r in rows}
    assert olds["Phường Thạch Thang"] == "Phường Hải Châu"
    assert olds["Phường Hòa Cường Bắc"] == "Phường Hòa Cường"
    assert olds["Xã Hòa Sơn"] == "Phường Hòa Khánh"  # a commune of Hòa Vang into a ward
    assert all(str(r["changed_on"]) == "2025-07-01" for r in rows)


def test_an_old_ward_names_its_2025_ward(client) -> None:  # noqa: ANN001
    r = client.get("/admin/lineage", params={"code": "old-ward-thach-thang"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name_vi"] == "Phường Thạch Thang" and body["valid_to"] == "2025-07-01"
    assert [(u["code"], u["name_vi"], u["share"]) for u in body["became"]] == [
        ("ward-hai-chau", "Phường Hải Châu", 1.0)]
    by_name = client.get("/admin/lineage", params={"name": "thach thang"}).json()
    assert by_name["units"][0]["became"][0]["code"] == "ward-hai-chau"


def test_a_new_ward_lists_what_it_was_formed_from(client) -> None:  # noqa: ANN001
    body = client.get("/admin/lineage", params={"code": "ward-hai-chau"}).json()
    olds = {u["name_vi"] for u in body["formed_from"]}
    assert {"Phường Thạch Thang", "Phường Phước Ninh", "Quận Hải Châu"} <= olds
    district = next(u for u in body["formed_from"] if u["code"] == "district-hai-chau")
    assert district["share"] == pytest.approx(0.5, abs=0.02)  # half the district's box


def test_a_district_splits_by_area_share(client) -> None:  # noqa: ANN001
    body = client.get("/admin/lineage", params={"code": "district-hai-chau"}).json()
    shares = {u["code"]: u["share"] for u in body["became"]}
    assert set(shares) == {"ward-hai-chau", "ward-hoa-cuong"}
    assert sum(shares.values()) == pytest.approx(1.0, abs=0.01)


def test_which_unit_is_this_point_in_on_a_day(client) -> None:  # noqa: ANN001
    def at(day: str) -> list[str]:
        r = client.get("/admin/at", params={"lon": 108.22, "lat": 16.07, "date": day})
        assert r.status_code == 200, r.text
        return [u["code"] for u in r.json()["units"] if u["code"] in
                {"district-hai-chau", "ward-hai-chau", "ward-hoa-cuong"}]

    assert at("2020-01-01") == ["district-hai-chau"]
    assert at("2025-06-30") == ["district-hai-chau"]
    assert at("2025-07-01") == ["ward-hai-chau"]


def test_bad_lineage_and_point_queries_are_4xx(client) -> None:  # noqa: ANN001
    assert client.get("/admin/lineage", params={"code": "no-such-unit"}).status_code == 404
    assert client.get("/admin/lineage").status_code == 400
    assert client.get("/admin/at", params={"lon": 0, "lat": 0}).status_code == 400
    assert client.get("/admin/at", params={"lon": 108.2, "lat": 16.0,
                                           "date": "not a date"}).status_code in (400, 422)
