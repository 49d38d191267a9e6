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
  });
})();
