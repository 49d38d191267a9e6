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
