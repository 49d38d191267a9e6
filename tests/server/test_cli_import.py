"""`twin import osm|vector|dem` through typer's runner against the test database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from server.cli import app
from tests.conftest import count
from twin.settings import Settings

TABLES = ("admin_area", "building", "facility", "road_segment", "road_node", "terrain",
          "land_cover", "utility_node", "utility_edge")


@pytest.fixture()
def cli(settings: Settings):  # noqa: ANN201
    runner = CliRunner()
    env = {"TWIN_DATABASE_URL": settings.url(), "TWIN_DATA_DIR": str(settings.data_dir)}

    def invoke(*args: str):  # noqa: ANN202
        return runner.invoke(app, ["import", *args], env=env)

    return invoke


def snapshot(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        versions = dict(conn.execute(text("SELECT table_name, version FROM table_version")).all())
    return {"versions": versions, **{t: count(engine, t) for t in TABLES}}


def test_import_vector_prints_summary(cli, engine: Engine, danang: Path) -> None:  # noqa: ANN001
    path = danang / "admin" / "danang_districts_2020.geojson"
    result = cli("vector", str(path), "--as", "admin_area", "--map", "name_vi=name_vi")
    assert result.exit_code == 0, result.output
    assert "import summary: file:danang_districts_2020" in result.output
    assert "admin_area" in result.output
    assert count(engine, "admin_area", "source = 'file:danang_districts_2020'") == 7


def test_import_osm_twice(cli, engine: Engine, danang: Path) -> None:  # noqa: ANN001
    path = danang / "osm_hai_chau_core" / "map.osm"
    first = cli("osm", str(path))
    assert first.exit_code == 0, first.output
    assert "road_segment" in first.output and "building" in first.output
    buildings = count(engine, "building", "source = 'osm'")
    second = cli("osm", str(path))
    assert second.exit_code == 0, second.output
    assert count(engine, "building", "source = 'osm'") == buildings == 314


def test_import_dem(cli, engine: Engine, settings: Settings, danang: Path) -> None:  # noqa: ANN001
    result = cli("dem", str(danang / "dem" / "danang_srtm_gl1_30m.tif"), "--name", "cli-dem")
    assert result.exit_code == 0, result.output
    assert "terrain" in result.output and "COG written" in result.output
    assert (settings.terrain_dir / "cli-dem.tif").exists()
    assert count(engine, "terrain", "name = 'cli-dem'") == 1


def test_bad_input_fails_cleanly(cli, engine: Engine, danang: Path, tmp_path: Path) -> None:  # noqa: ANN001
    truncated = tmp_path / "cut.osm"
    data = (danang / "osm_hai_chau_core" / "map.osm").read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    not_raster = tmp_path / "x.tif"
    not_raster.write_text("nope", encoding="utf-8")
    districts = danang / "admin" / "danang_districts_2020.geojson"
    before = snapshot(engine)
    for args, says in [
        (("osm", str(truncated)), "cannot read OSM file"),
        (("osm", str(tmp_path / "missing.osm")), "not found"),
        (("vector", str(districts), "--as", "admin_area", "--map", "nosuch=name_vi"), "nosuch"),
        (("vector", str(districts), "--as", "admin_area", "--map", "bad"), "field=column"),
        (("dem", str(not_raster)), "not a raster"),
    ]:
        result = cli(*args)
        assert result.exit_code != 0, args
        assert "error" in result.output and says in result.output, result.output
    assert snapshot(engine) == before


def test_import_admin_with_validity_answers_dated_queries(  # noqa: ANN001
        cli, engine: Engine, settings: Settings, danang: Path) -> None:
    """The README's district import, dated: the 7 districts in 2020, none after the merge."""
    from fastapi.testclient import TestClient

    from server.app import create_app

    path = danang / "admin" / "danang_districts_2020.geojson"
    undated = cli("vector", str(path), "--as", "admin_area")
    assert undated.exit_code == 0, undated.output
    assert "carry no valid_from/valid_to" in " ".join(undated.output.split())
    bad = cli("vector", str(path), "--as", "admin_area", "--valid-to", "1 July 2025")
    assert bad.exit_code != 0 and "--valid-to expects a date" in bad.output
    wrong = cli("vector", str(path), "--as", "building", "--valid-to", "2025-07-01")
    assert wrong.exit_code != 0 and "has no validity" in " ".join(wrong.output.split())
    dated = cli("vector", str(path), "--as", "admin_area", "--valid-to", "2025-07-01")
    assert dated.exit_code == 0, dated.output
    assert "carry no valid_from" not in dated.output
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT id FROM admin_area WHERE source = 'file:danang_districts_2020'"))]
    assert len(ids) == 7
    with TestClient(create_app(settings)) as client:
        def matched(when: str) -> set[int]:
            r = client.get("/collections/admin_boundaries/items",
                           params={"ids": ",".join(map(str, ids)), "datetime": when})
            assert r.status_code == 200, r.text
            return {f["id"] for f in r.json()["features"]}

        assert matched("2020-01-01") == set(ids)
        assert matched("2025-06-30") == set(ids)
        assert matched("2025-07-01") == set()
        assert matched("2025-07-02") == set()
    with engine.begin() as conn:  # other tests import the same file undated
        conn.execute(text("DELETE FROM admin_area WHERE source = 'file:danang_districts_2020'"))
