// Style hints from layers.yaml (passed in as JSON) → deck.gl accessors and legend entries.
(function () {
  "use strict";
  const T = window.Twin;
  const GREY = [128, 128, 128, 255];

  function classColor(st, props) {
    const key = st.fill_by || st.color_by;
    if (!key || !st.colors) return null;
    const v = props ? props[key] : undefined;
    return st.colors[v] || st.colors.default || GREY;
  }

  const S = (T.style = {
    kind(layer) {
      const g = (layer.geometry_type || "").toLowerCase();
      if (g.includes("polygon")) return "polygon";
      if (g.includes("line")) return "line";
      if (g.includes("point")) return "point";
      return "any";
    },
    order(layer) { return (layer.style && layer.style.order) || 0; },
    // Fill for polygons and points.
    fill(layer, props) {
      const st = layer.style || {};
      return classColor(st, props) || st.fill || st.color || GREY;
    },
    // Stroke for lines and polygon outlines.
    line(layer, props) {
      const st = layer.style || {};
      return classColor(st, props) || st.line || st.color || st.fill || GREY;
    },
    // Nominal line width (style units ≈ metres at street scale).
    width(layer, props) {
      const st = layer.style || {};
      if (st.widths) {
        const key = st.color_by || st.fill_by;
        const v = props && key ? props[key] : undefined;
        return st.widths[v] || st.widths.default || 2;
      }
      return st.width || st.line_width || 2;
    },
    radius(layer) { return (layer.style && layer.style.radius) || 5; },
    label(layer) { return layer.style && layer.style.label; },
    // points drawn as a symbol per class (incidents: style.symbol_by = category)
    symbols(layer) { return layer.style && layer.style.symbol_by; },
    extrude(layer) { return layer.style && layer.style.extrude; },
    extrudeFromZoom(layer) {
      const z = layer.style && layer.style.extrude_from_zoom;
      return typeof z === "number" ? z : 15;
    },
    // Legend rows: [{label, color, kind}] — one per class for class-coloured layers.
    legend(layer) {
      const st = layer.style || {};
      const kind = S.kind(layer);
      if (S.symbols(layer) && T.incidents) return T.incidents.legend(layer);
      if (st.colors) {
        return Object.entries(st.colors).map(([k, c]) => ({
          label: T.t("class." + k) === "class." + k ? k : T.t("class." + k),
          color: c,
          kind,
        }));
      }
      const c = kind === "line" || (kind === "polygon" && !st.fill) ? S.line(layer) : S.fill(layer);
      return [{ label: T.title(layer.title), color: c, kind: st.fill ? kind : kind === "polygon" ? "outline" : kind }];
    },
    css(c) {
      const a = c.length > 3 ? c[3] / 255 : 1;
      return `rgba(${c[0]},${c[1]},${c[2]},${a.toFixed(2)})`;
    },
    // Colours of analysis overlays (what-if, help routes), apart from the basemap's blues
    // (water, pipes), the flood ramp's yellow → purple and the incidents' red.
    overlay: {
      closed: [20, 20, 20, 255], cut_off: [140, 70, 180, 255], building: [230, 120, 20, 255],
      route_before: [105, 105, 105, 230], route_after: [0, 140, 120, 255],
      origin: [20, 20, 20, 255], facility: [0, 140, 120, 255],
      isolated: [215, 25, 110, 255], pipe_cut: [140, 70, 180, 255],
      operate: [20, 150, 60, 255], shut: [120, 120, 120, 255], no_service: [230, 120, 20, 255],
      help_route: [0, 120, 110, 235], hospital: [0, 120, 110, 255],
      flood_outline: [90, 20, 110, 235],
    },
    // A text layer of names on the map (hospitals, valves): items {pos: [lon, lat], text},
    // white halo, above everything; its characters are those of the names themselves.
    names(id, items, opts) {
      const D = window.deck;
      const chars = new Set("0123456789 .,-–()#/:");
      for (const d of items) for (const c of String(d.text)) chars.add(c);
      return new D.TextLayer(Object.assign({
        id, data: items, pickable: false, getPosition: (d) => d.pos, getText: (d) => String(d.text),
        getSize: 13, sizeUnits: "pixels", getColor: [20, 30, 40, 255], fontFamily: "sans-serif",
        fontWeight: 600, characterSet: Array.from(chars).join(""),
        fontSettings: { sdf: true, fontSize: 40, buffer: 6, radius: 10 },
        outlineWidth: 3, outlineColor: [255, 255, 255, 235], getPixelOffset: [0, -16],
        getTextAnchor: "middle", getAlignmentBaseline: "bottom", billboard: true,
        parameters: { depthCompare: "always", depthWriteEnabled: false },
      }, opts || {}));
    },
    // Dashes of paths ([[lon, lat], …] each) as short paths of about ``on`` pixels with
    // ``off`` pixel gaps at ``zoom`` (the bundle has no PathStyleExtension): redraw them
    // when the zoom changes by a step.
    dashes(paths, zoom, on, off) {
      const out = [];
      const mpp = (lat) => (40075016.686 * Math.cos((lat * Math.PI) / 180)) / (512 * Math.pow(2, zoom));
      for (const path of paths) {
        if (!path || path.length < 2) continue;
        const lenOn = (on || 9) * mpp(path[0][1]), lenOff = (off || 6) * mpp(path[0][1]);
        let drawing = true, left = lenOn, cur = [path[0]];
        for (let i = 1; i < path.length; i++) {
          let [x0, y0] = path[i - 1];
          const [x1, y1] = path[i];
          const kx = 111320 * Math.cos((y0 * Math.PI) / 180), ky = 110540;
          let seg = Math.hypot((x1 - x0) * kx, (y1 - y0) * ky);
          while (seg > left) {
            const f = left / seg, x = x0 + (x1 - x0) * f, y = y0 + (y1 - y0) * f;
            if (drawing) { cur.push([x, y]); out.push(cur); } else cur = [[x, y]];
            drawing = !drawing; seg -= left; x0 = x; y0 = y;
            if (drawing) cur = [[x, y]];
            left = drawing ? lenOn : lenOff;
          }
          left -= seg;
          if (drawing) cur.push([x1, y1]);
        }
        if (drawing && cur.length > 1) out.push(cur);
        if (out.length > 20000) break;
      }
      return out;
    },
  });
})();
