// The map legend of analysis overlays (floods, closures, outages, rain, river): one box
// on the map, one section per overlay, each with its entries. Any page script uses it:
//
//   Twin.legend.depth("whatif-flood", { title: T.t("legend.floodDepth") });   // depth ramp
//   Twin.legend.set("whatif-closure", { title: "…", entries: [
//     { key: "route_after", label: "…", color: [r, g, b, a], kind: "line" },  // fill | line |
//   ] });                                                      // dash | point | ring | outline
//   Twin.legend.clear("whatif-closure");
//
// The depth classes (metres) and their colours are the server's (layers/raster.py
// DEPTH_LEGEND): a value takes the colour of the last class it reaches. Labels are given
// already translated; call set again on `twin:lang` (or pass `titleKey`/`labelKey` and
// the legend translates them itself when the language changes).
(function () {
  "use strict";
  const T = window.Twin, el = T.el;
  const DEPTH = [
    [0, [255, 230, 120, 255]], [0.1, [254, 178, 76, 255]], [0.3, [250, 120, 45, 255]],
    [0.5, [222, 45, 38, 255]], [1, [160, 25, 70, 255]], [2, [95, 10, 80, 255]],
  ];
  const sections = new Map();  // id → spec, in insertion order
  let box = null;

  const css = (c) => `rgba(${c[0]},${c[1]},${c[2]},${((c.length > 3 ? c[3] : 255) / 255).toFixed(2)})`;
  const fmt = (m) => Number(m).toLocaleString(T.lang === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: 1 });
  const text = (s, key, vars) => (key ? T.t(key, vars) : s || "");

  function container() {
    if (box && box.isConnected) return box;
    box = el("section", { id: "map-legend", class: "map-legend", "aria-labelledby": "map-legend-h", hidden: true }, [
      el("h2", { id: "map-legend-h", class: "map-legend-h", text: T.t("legend.title") }),
      el("div", { class: "map-legend-body" }),
    ]);
    // outside the panel dock: panels.js leaves it where twin.css puts it
    box.dataset.panel = "free";
    document.body.appendChild(box);
    return box;
  }
  function render() {
    const b = container();
    b.querySelector(".map-legend-h").textContent = T.t("legend.title");
    const body = b.querySelector(".map-legend-body");
    body.replaceChildren(...Array.from(sections.entries()).map(([id, s]) => el("div", { class: "map-legend-section", "data-legend": id }, [
      el("h3", { text: text(s.title, s.titleKey) }),
      el("ul", {}, (s.entries || []).map((e) => el("li", { "data-entry": e.key || "" }, [
        el("span", { class: "lg-swatch " + (e.kind || "fill"), style: "--c:" + css(e.color || [128, 128, 128]), "aria-hidden": "true" }),
        el("span", { text: text(e.label, e.labelKey, e.vars) }),
      ]))),
      s.note || s.noteKey ? el("p", { class: "map-legend-note", text: text(s.note, s.noteKey) }) : null,
    ])));
    b.hidden = sections.size === 0;
    document.dispatchEvent(new CustomEvent("twin:legend", { detail: { ids: Array.from(sections.keys()) } }));
  }

  // depth entries, shallow to deep: "< 0,1 m", "0,1–0,3 m", …, "≥ 2 m"
  function depthEntries(classes) {
    const c = classes || DEPTH;
    return c.map(([lo, color], i) => {
      const hi = i + 1 < c.length ? c[i + 1][0] : null;
      const label = i === 0 ? `< ${fmt(hi)} m` : hi === null ? `≥ ${fmt(lo)} m` : `${fmt(lo)}–${fmt(hi)} m`;
      return { key: "depth-" + lo, label, color, kind: "fill" };
    });
  }
  function depthColor(m, classes) {
    const c = classes || DEPTH;
    let out = c[0][1];
    for (const [lo, color] of c) if (m >= lo) out = color;
    return out;
  }

  const L = (T.legend = {
    DEPTH,
    depthColor,
    depthEntries,
    // spec: { title | titleKey, entries: [{ key, label | labelKey, color, kind }], note | noteKey }
    set(id, spec) { sections.set(id, spec); render(); },
    // a depth ramp in metres, plus any other entries after it (e.g. the flooded outline)
    depth(id, spec) {
      const s = Object.assign(spec && spec.title ? {} : { titleKey: "legend.depth" }, spec || {}, { depthRamp: true });
      s.entries = depthEntries(s.classes).concat(s.entries || []);
      L.set(id, s);
    },
    clear(id) { if (sections.delete(id)) render(); },
    has(id) { return sections.has(id); },
    ids() { return Array.from(sections.keys()); },
  });
  // sections with label strings redo their numbers; keyed ones their words
  document.addEventListener("twin:lang", () => {
    for (const s of sections.values()) {
      if (s.titleKey === "legend.depth" || s.depthRamp) {
        const extra = (s.entries || []).filter((e) => !String(e.key).startsWith("depth-"));
        s.entries = depthEntries(s.classes).concat(extra);
      }
    }
    if (box) render();
  });
})();
