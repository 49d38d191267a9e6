// Basemap tiles from a PMTiles archive (`twin tiles export`), when the page is opened
// with ?pmtiles=<url> (e.g. /?pmtiles=/pmtiles/water-landuse-roads-buildings.pmtiles):
// the layers the archive holds are read from it by HTTP range requests instead of
// /tiles — the same tiles, served by any file server or CDN, or offline.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer;
  const url = new URLSearchParams(location.search).get("pmtiles");
  if (!url || !V) return;
  // same origin or a relative path only: the page never loads tiles from elsewhere
  const target = new URL(url, location.href);
  // the basemap waits for the archive rather than asking /tiles (set by viewer.js)
  const done = () => { V.archivePending = false; V.render(); };
  if (target.origin !== location.origin) { console.warn("pmtiles: other origins are refused"); done(); return; }
  const s = document.createElement("script");
  s.src = "/static/vendor/pmtiles.js";
  s.onload = async () => {
    try {
      const archive = new window.pmtiles.PMTiles(target.href);
      const [header, meta] = await Promise.all([archive.getHeader(), archive.getMetadata()]);
      V.archive = {
        source: archive, url: target.href, minZoom: header.minZoom, maxZoom: header.maxZoom,
        layers: new Set(((meta && meta.vector_layers) || []).map((l) => l.id)),
      };
      document.documentElement.dataset.archive = target.pathname;
    } catch (err) {
      console.warn("pmtiles: cannot read the archive; the basemap comes from /tiles", err);
    }
    done();
  };
  s.onerror = done;
  document.head.appendChild(s);
})();
