"""The viewer drawing its basemap from a PMTiles archive (`twin tiles export`) by range
requests, not from /tiles: the same city on the screen."""

from __future__ import annotations

from layers.catalog import load_catalog
from layers.pmtiles_export import export
from tests.web.city import LANDMARK
from tests.web.test_viewer import map_area, not_background, pixels

BASEMAP = ["water", "landuse", "admin_boundaries", "roads", "buildings", "places"]


def test_basemap_from_an_archive(visit, web_settings, web_engine) -> None:  # noqa: ANN001
    catalog = load_catalog(web_settings.layers_file)
    path = web_settings.data_dir / "pmtiles" / "basemap.pmtiles"
    lon, lat = LANDMARK
    with web_engine.connect() as conn:
        info = export(conn, [catalog.get(i) for i in BASEMAP], path, 12, 16,
                      (lon - 0.02, lat - 0.02, lon + 0.02, lat + 0.02))
    assert info["tiles"] > 10
    visit.goto(f"/?pmtiles=/pmtiles/basemap.pmtiles#16.5/{lat}/{lon}/0/0")
    visit.page.wait_for_function("document.documentElement.dataset.archive")
    visit.idle()
    img = pixels(visit.shot("map-pmtiles"))
    visit.check()
    assert any("/pmtiles/basemap.pmtiles" in u for u in visit.requests)
    # the basemap's tiles came from the archive: /tiles was asked for other layers only
    base_tiles = [u for u in visit.requests if "/tiles/" in u and "buildings" in u]
    assert not base_tiles, base_tiles
    drawn = not_background(map_area(img))
    assert drawn.mean() > 0.25, f"only {drawn.mean():.0%} of the map is drawn"
    x, y = visit.project(lon, lat)
    patch = img[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4]
    assert not_background(patch).all(), "no building drawn where the landmark stands"


def test_an_archive_on_another_origin_is_refused(visit) -> None:  # noqa: ANN001
    visit.goto("/?pmtiles=https://cdn.example.org/city.pmtiles#15/16.06/108.21/0/0")
    assert not [u for u in visit.requests if u.startswith("https://cdn.example.org")]
    tiles = [u for u in visit.requests if "/tiles/" in u and "buildings" in u]
    assert tiles  # the API's tiles as usual
