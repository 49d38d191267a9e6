import pytest

from layers.catalog import check_catalog, load_catalog
from layers.errors import CatalogError, LayerNotFound


def test_catalogue_loads_and_hides_staff_layers(settings):
    cat = load_catalog(settings.layers_file)
    ids = [lyr.id for lyr in cat]
    assert "buildings" in ids and all("." not in i for i in ids)
    public = {lyr.id for lyr in cat.visible(None)}
    assert "water_network" not in public and "buildings" in public
    assert "water_network" in {lyr.id for lyr in cat.visible("responder")}
    assert "power_network" not in {lyr.id for lyr in cat.visible("planner")}
    with pytest.raises(LayerNotFound):
        cat.get("water_network", None)
    assert cat.get("roads").zoom_filter(10) is not None
    assert cat.get("roads").zoom_filter(15) == "TRUE"


def test_catalogue_matches_database(settings, engine):
    with engine.connect() as conn:
        assert check_catalog(conn, load_catalog(settings.layers_file)) == []


def test_bad_catalogue_is_refused(tmp_path):
    bad = tmp_path / "layers.yaml"
    bad.write_text("layers:\n  - id: bad.id\n    title: {vi: a, en: b}\n    table: building\n")
    with pytest.raises(CatalogError, match="no dots"):
        load_catalog(bad)


def test_check_reports_missing_column(tmp_path, engine):
    f = tmp_path / "layers.yaml"
    f.write_text(
        "layers:\n  - id: b\n    title: {vi: a, en: b}\n    table: building\n"
        "    properties: [{name: nope}]\n"
    )
    with engine.connect() as conn:
        problems = check_catalog(conn, load_catalog(f))
    assert any("nope" in p for p in problems)
