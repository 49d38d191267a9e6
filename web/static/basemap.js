// The edge of the basemap: where the city's data ends the map fades softly into the page
// colour instead of stopping at a hard square (seen from about z11). The extent is the
// union of the basemap's polygon layers' extents (/collections); outside it everything is
// the page colour, and inside a band along its border fades from clear to that colour.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, S = T.style, D = window.deck;
  if (!V) return;
  const STEPS = 12;   // bands of the fade
  const FADE = 0.15;  // the fade's width, as a share of the extent's shorter side

  function inset(b, d) { return [b[0] + d, b[1] + d, b[2] - d, b[3] - d]; }
  function ring(b) { return [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]; }
  // polygons (outer ring, hole) and colours: opaque outside the extent, a fade inside it
  function edgePolygons(ext) {
    const bg = T.config.background || [242, 239, 233];
    const width = FADE * Math.min(ext[2] - ext[0], ext[3] - ext[1]);
    const out = [{ polygon: [ring([-180, -85, 180, 85]), ring(ext)], color: bg.concat([255]) }];
    for (let k = 0; k < STEPS; k++) {
      const alpha = Math.round(255 * Math.pow(1 - (k + 0.5) / STEPS, 1.6));
      out.push({ polygon: [ring(inset(ext, (width * k) / STEPS)), ring(inset(ext, (width * (k + 1)) / STEPS))],
        color: bg.concat([alpha]) });
    }
    return out;
  }
  // the union of [w, s, e, n] boxes of the basemap's polygon layers
  async function dataExtent() {
    const ids = new Set(V.layers.filter((l) => l.basemap && S.kind(l) === "polygon").map((l) => l.id));
    const body = await T.api("/collections");
    let ext = null;
    for (const c of body.collections || []) {
      const b = ids.has(c.id) && c.extent && c.extent.spatial && c.extent.spatial.bbox && c.extent.spatial.bbox[0];
      if (!b || b.length < 4 || b[0] <= -180 || b[2] >= 180) continue;
      ext = ext ? [Math.min(ext[0], b[0]), Math.min(ext[1], b[1]), Math.max(ext[2], b[2]), Math.max(ext[3], b[3])] : b.slice(0, 4);
    }
    return ext;
  }
  let asked = false;
  async function build() {
    if (asked || !V.layers.some((l) => l.basemap)) return;
    asked = true;
    try {
      const ext = await dataExtent();
      if (!ext) return;
      V.dataExtent = ext;
      V.edge = new D.SolidPolygonLayer({
        id: "basemap-edge", data: edgePolygons(ext), pickable: false,
        getPolygon: (d) => d.polygon, getFillColor: (d) => d.color,
        parameters: { depthWriteEnabled: false },
      });
      V.render({ labels: false });
    } catch (e) { asked = false; /* no edge: the map still draws */ }
  }
  document.addEventListener("twin:layers", build);
  build();  // the public catalogue was set before this script ran
})();
