"""GDAL's OAPIF driver as a real client of the OGC API Features endpoints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pyogrio
import pytest
from sqlalchemy import text

from tests.feature_data import delete, insert

pytestmark = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL not installed")
ENV = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", "CPL_DEBUG": "OFF"}


@pytest.fixture(scope="module")
def data(engine):
    ids = insert(engine)
    yield ids
    delete(engine)


def run(*args: str) -> str:
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=300, env=ENV)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_ogrinfo_lists_public_collections(live_server, data):
    out = run("ogrinfo", "-ro", "-so", f"OAPIF:{live_server}/")
    names = re.findall(r"^\d+: (\w+)", out, re.M)
    assert "buildings" in names and "roads" in names and "admin_boundaries" in names
    assert "water_network" not in names and "power_network" not in names


def test_ogrinfo_reads_a_layer_with_an_attribute_filter(live_server, data):
    out = run("ogrinfo", "-ro", "-al", "-q", f"OAPIF:{live_server}/", "buildings",
              "-spat", "108.49", "16.49", "108.61", "16.61", "-where", "levels > 20")
    assert len(re.findall(r"^OGRFeature\(buildings\)", out, re.M)) == 5
    assert "height_m (Real) = 75" in out


def test_ogr2ogr_copies_every_building(live_server, data, engine, tmp_path):
    with engine.connect() as conn:
        expected = conn.execute(text("SELECT count(*) FROM building")).scalar_one()
    out = tmp_path / "out.gpkg"
    run("ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{live_server}/", "buildings",
        "-oo", "PAGE_SIZE=1000")
    info = pyogrio.read_info(out, layer="buildings")
    assert info["features"] == expected >= 25
    assert "levels" in list(info["fields"])


def test_gdal_sends_the_attribute_filter_to_the_server(live_server, data, engine):
    """GDAL 3.6 pushes ``-where`` to us as a CQL text filter (it finds ``cql-text`` in
    the OpenAPI document and the queryables through the collection's links), so only
    the matching features cross the wire."""
    with engine.connect() as conn:
        expected = conn.execute(text(
            "SELECT count(*) FROM building WHERE levels > 20 AND use = 'residential'"
        )).scalar_one()
    res = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-q", f"OAPIF:{live_server}/", "buildings",
         "-where", "levels > 20 AND use = 'residential'"],
        capture_output=True, text=True, timeout=300, env={**ENV, "CPL_DEBUG": "ON"})
    assert res.returncode == 0, res.stderr
    fetched = [u for u in re.findall(r"HTTP: Fetch\((\S+)\)", res.stderr) if "/items" in u]
    assert any("filter=" in u and "filter-lang=cql-text" in u for u in fetched), fetched
    assert "client side" not in res.stderr
    assert len(re.findall(r"^OGRFeature\(buildings\)", res.stdout, re.M)) == expected
