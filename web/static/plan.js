// The planner view: CQL2 filter of a layer, counts per layer in a drawn area with export
// (GeoJSON, GeoPackage, CSV), and a date control for layers with time.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, D = window.deck, el = T.el;
  const LIMIT = 2000;
  let area = null;

  function layerOptions(select, keep) {
    const prev = keep || select.value;
    select.replaceChildren(...V.layers.map((l) => el("option", { value: l.id, text: T.title(l.title) })));
    if (prev && V.byId[prev]) select.value = prev;
  }

  // -- CQL2 filter -------------------------------------------------------------------------
  function highlight(fc, layer) {
    const ext = layer.id === "buildings" && V.extrude;
    V.setExtra("filter", new D.GeoJsonLayer({
      id: "filter", data: fc, pickable: true, twinLayer: layer.id,
      filled: true, stroked: true, extruded: ext,
      getElevation: (f) => (Number(f.properties.height_m) || 6) + 1,
      getFillColor: [220, 50, 60, ext ? 235 : 150], getLineColor: [170, 20, 40, 255],
      lineWidthUnits: "pixels", getLineWidth: 3, pointRadiusUnits: "pixels", getPointRadius: 7,
    }));
  }
  async function applyFilter(e) {
    if (e) e.preventDefault();
    const id = T.$("#filter-layer").value, expr = T.$("#filter-text").value.trim();
    const out = T.$("#filter-result"), err = T.$("#filter-error");
    out.textContent = ""; err.textContent = "";
    if (!expr) { V.setExtra("filter", null); return; }
    const url = `/collections/${encodeURIComponent(id)}/items?filter-lang=cql2-text&limit=${LIMIT}` +
      `&filter=${encodeURIComponent(expr)}`;
    try {
      const fc = await T.api(url, { headers: { Accept: "application/geo+json, application/json" } });
      const n = fc.numberMatched !== undefined ? fc.numberMatched : fc.features.length;
      const more = n > fc.features.length ? T.t("plan.filterMore", { shown: fc.features.length }) : "";
      out.textContent = T.t("plan.filterCount", { n, more });
      out.dataset.count = String(n);
      highlight(fc, V.byId[id]);
    } catch (ex) {
      V.setExtra("filter", null);
      err.textContent = ex.message;
    }
  }

  // -- area: counts and export ------------------------------------------------------------------
  function dateParam() {
    const box = T.$("#time-box");
    return box && !box.hidden ? "date=" + V.date : "";
  }
  async function summarise(shape) {
    area = shape;
    const res = T.$("#area-result"), tbody = T.$("#area-summary tbody");
    T.$("#draw-hint").textContent = "";
    try {
      const body = await T.api("/area/summary?" + dateParam(), {
        method: "POST", body: JSON.stringify(shape), headers: { "Content-Type": "application/json" },
      });
      tbody.replaceChildren(...body.layers.map((r) => el("tr", { "data-layer": r.id }, [
        el("td", { text: T.title(r.title) }),
        el("td", { text: r.count === null ? "—" : r.count.toLocaleString(T.lang === "vi" ? "vi-VN" : "en-GB") }),
      ])));
      T.$("#area-size").textContent = T.t("plan.summaryArea", { km2: body.area_km2.toLocaleString(T.lang === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: 3 }) });
      res.hidden = false;
    } catch (ex) {
      T.$("#draw-hint").textContent = ex.message;
      res.hidden = true;
    }
  }
  async function exportArea(format) {
    if (!area) return;
    const id = T.$("#export-layer").value, status = T.$("#export-status");
    status.textContent = T.t("plan.exporting");
    try {
      const res = await T.api(`/area/export?layer=${encodeURIComponent(id)}&format=${format}&${dateParam()}`, {
        method: "POST", body: JSON.stringify(area), raw: true,
        headers: { "Content-Type": "application/json", Accept: "*/*" },
      });
      const blob = await res.blob();
      const m = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") || "");
      const name = m ? m[1] : `${id}-area.${format}`;
      const a = el("a", { href: URL.createObjectURL(blob), download: name });
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      status.textContent = T.t("plan.exported", { file: name });
    } catch (ex) {
      status.textContent = ex.message;
    }
  }
  function drawButtons(mode) {
    T.$("#draw-rect").setAttribute("aria-pressed", String(mode === "rect"));
    T.$("#draw-poly").setAttribute("aria-pressed", String(mode === "poly"));
    T.$("#draw-hint").textContent = mode === "rect" ? T.t("plan.rectHint") : mode === "poly" ? T.t("plan.polyHint") : "";
  }

  // -- time ------------------------------------------------------------------------------------
  const START = { y: 2015, m: 0 };
  function monthToIso(i) {
    const y = START.y + Math.floor((START.m + i) / 12), m = (START.m + i) % 12;
    return `${y}-${String(m + 1).padStart(2, "0")}-01`;
  }
  function setupTime() {
    const timed = V.layers.filter((l) => l.time_field && l.time_end_field);
    const box = T.$("#time-box");
    box.hidden = timed.length === 0;
    if (box.hidden) return;
    const now = new Date();
    const months = (now.getFullYear() - START.y) * 12 + now.getMonth() - START.m;
    const slider = T.$("#time-slider"), out = T.$("#time-value");
    slider.max = String(months + 12);
    slider.value = String(months);
    const show = () => {
      const iso = monthToIso(Number(slider.value));
      out.textContent = iso;
      slider.setAttribute("aria-valuetext", iso);
      V.setDate(iso);
    };
    slider.addEventListener("input", show);
    slider.addEventListener("change", () => { if (area) summarise(area); });
    show();
  }

  function setup() {
    layerOptions(T.$("#filter-layer"), "buildings");
    layerOptions(T.$("#export-layer"), "buildings");
    T.$("#filter-form").addEventListener("submit", applyFilter);
    T.$("#filter-clear").addEventListener("click", () => {
      T.$("#filter-text").value = ""; T.$("#filter-result").textContent = ""; T.$("#filter-error").textContent = "";
      V.setExtra("filter", null);
    });
    T.$("#draw-rect").addEventListener("click", () => {
      if (T.draw.mode === "rect") T.draw.cancel(); else T.draw.start("rect", summarise);
    });
    T.$("#draw-poly").addEventListener("click", () => {
      if (T.draw.mode === "poly") T.draw.cancel(); else T.draw.start("poly", summarise);
    });
    T.$("#draw-view").addEventListener("click", () => T.draw.fromView(summarise));
    T.$("#draw-clear").addEventListener("click", () => {
      T.draw.clear(); area = null; T.$("#area-result").hidden = true;
    });
    document.querySelectorAll("#plan-panel button.export").forEach((b) => {
      b.addEventListener("click", () => exportArea(b.dataset.format));
    });
    document.addEventListener("twin:draw", (e) => drawButtons(e.detail.mode));
    document.addEventListener("twin:lang", () => {
      layerOptions(T.$("#filter-layer")); layerOptions(T.$("#export-layer"));
      drawButtons(T.draw.mode);
      if (area) summarise(area);
    });
    setupTime();
  }
  document.addEventListener("twin:ready", setup, { once: true });
  window.twinPlanner = { summarise, applyFilter, get area() { return area; } };
})();
