// Drawing an area on the map: a rectangle (two clicks, or drag) or a polygon (clicks,
// then double-click or Enter; Esc cancels, Backspace removes the last vertex).
// The result is a GeoJSON Polygon in lon/lat (WGS 84).
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, D = window.deck;
  const INK = [11, 110, 153, 255], FILL = [11, 110, 153, 45];

  const st = { mode: null, pts: [], hover: null, shape: null, onDone: null };

  function ring(pts) { return pts.concat([pts[0]]); }
  function rect(a, b) {
    return [[a[0], a[1]], [b[0], a[1]], [b[0], b[1]], [a[0], b[1]]];
  }
  function draft() {
    if (st.mode === "rect" && st.pts.length === 1 && st.hover) return rect(st.pts[0], st.hover);
    if (st.mode === "poly") return st.hover ? st.pts.concat([st.hover]) : st.pts;
    return null;
  }
  function render() {
    const layers = [];
    const pts = st.shape ? st.shape.coordinates[0].slice(0, -1) : draft();
    if (pts && pts.length >= 2) {
      const closed = st.shape || st.mode === "rect" || pts.length >= 3;
      layers.push(new D.PolygonLayer({
        id: "draw-shape", data: [{ polygon: closed ? ring(pts) : pts }],
        getPolygon: (d) => d.polygon, filled: closed, stroked: true,
        getFillColor: FILL, getLineColor: INK, lineWidthUnits: "pixels", getLineWidth: 2.5,
        pickable: false,
      }));
    }
    const verts = st.shape ? [] : st.pts;
    if (verts.length) {
      layers.push(new D.ScatterplotLayer({
        id: "draw-vertices", data: verts, getPosition: (d) => d, radiusUnits: "pixels",
        getRadius: 5, getFillColor: [255, 255, 255, 255], getLineColor: INK, stroked: true,
        lineWidthUnits: "pixels", getLineWidth: 2, pickable: false,
      }));
    }
    V.setExtra("draw", layers.length ? layers : null);
  }
  function setController(drawing) {
    const c = drawing
      ? { doubleClickZoom: false, dragPan: st.mode !== "rect", dragRotate: st.mode !== "rect" }
      : true;
    V.deck.setProps({ controller: c, views: new D.MapView({ controller: c }) });
  }
  function finish() {
    let pts = st.pts;
    if (st.mode === "rect") {
      if (pts.length < 2) return;
      pts = rect(pts[0], pts[1]);
    }
    // drop repeated vertices (a double-click adds its point twice)
    pts = pts.filter((p, i) => i === 0 || p[0] !== pts[i - 1][0] || p[1] !== pts[i - 1][1]);
    if (pts.length < 3) return;
    const shape = { type: "Polygon", coordinates: [ring(pts)] };
    const done = st.onDone;
    stop();
    st.shape = shape;
    render();
    if (done) done(shape);
  }
  function stop() {
    st.mode = null; st.pts = []; st.hover = null;
    V.mode = null; V.cursor = null;
    setController(false);
    render();
    document.dispatchEvent(new CustomEvent("twin:draw", { detail: { mode: null } }));
  }
  function lngLat(info) { return info && info.coordinate ? [info.coordinate[0], info.coordinate[1]] : null; }

  V.onMapClick = function (info) {
    if (!st.mode) return false;
    const p = lngLat(info);
    if (!p) return true;
    if (st.mode === "rect") {
      st.pts.push(p);
      if (st.pts.length === 2) finish(); else render();
    } else {
      st.pts.push(p);
      render();
    }
    return true;
  };
  // rectangle by dragging (the map does not pan while drawing a rectangle)
  function pointAt(e) {
    const vp = V.deck.viewManager && V.deck.getViewports()[0];
    if (!vp) return null;
    const r = e.currentTarget.getBoundingClientRect();
    const p = vp.unproject([e.clientX - r.left, e.clientY - r.top]);
    return [p[0], p[1]];
  }
  let drag = null;
  document.addEventListener("DOMContentLoaded", () => {
    const map = document.getElementById("deck-container");
    map.addEventListener("pointerdown", (e) => {
      if (st.mode === "rect" && e.button === 0) drag = { x: e.clientX, y: e.clientY, p: pointAt(e), moved: false };
    });
    map.addEventListener("pointermove", (e) => {
      if (!drag || st.mode !== "rect") return;
      if (!drag.moved && Math.hypot(e.clientX - drag.x, e.clientY - drag.y) > 5) {
        drag.moved = true;
        st.pts = [drag.p];
      }
      if (drag.moved) { st.hover = pointAt(e); render(); }
    });
    map.addEventListener("pointerup", (e) => {
      if (!drag) return;
      const d = drag;
      drag = null;
      if (d.moved && st.mode === "rect") { st.pts = [d.p, pointAt(e)]; finish(); }
    });
  });
  const prevHover = V.deck.props.onHover;
  V.deck.setProps({
    onHover: (info, ev) => {
      if (st.mode) { st.hover = lngLat(info); if (st.pts.length) render(); return; }
      if (prevHover) prevHover(info, ev);
    },
  });
  document.addEventListener("DOMContentLoaded", () => {
    const map = document.getElementById("deck-container");
    map.addEventListener("dblclick", (e) => {
      if (st.mode === "poly") { e.preventDefault(); finish(); }
    });
  });
  document.addEventListener("keydown", (e) => {
    if (!st.mode) return;
    if (e.key === "Escape") { e.preventDefault(); stop(); }
    else if (e.key === "Enter" && st.mode === "poly") { e.preventDefault(); finish(); }
    else if (e.key === "Backspace" && st.mode === "poly" && st.pts.length &&
             !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
      e.preventDefault(); st.pts.pop(); render();
    }
  });

  T.draw = {
    start(mode, onDone) {
      stop();
      st.shape = null;
      st.mode = mode; st.onDone = onDone;
      V.mode = mode; V.cursor = "crosshair";
      setController(true);
      render();
      document.dispatchEvent(new CustomEvent("twin:draw", { detail: { mode } }));
    },
    cancel: stop,
    clear() { stop(); st.shape = null; render(); },
    // The current view as a rectangle (keyboard alternative to drawing).
    fromView(onDone) {
      const vs = V.getViewState();
      const [w, s, e, n] = new D.WebMercatorViewport(vs).getBounds();
      stop();
      st.shape = { type: "Polygon", coordinates: [ring(rect([w, s], [e, n]))] };
      render();
      onDone(st.shape);
    },
    get shape() { return st.shape; },
    get mode() { return st.mode; },
    finish,
  };
})();
