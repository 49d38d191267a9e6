// Rain scenario panels: /plan "Mưa lớn" (POST /scenarios/rain, saved, drawn through
// whatif.js showStored) and "Lũ sông" (POST /scenarios/river, a stage at a gauge), and
// /ops "Dự báo mưa" (saved, drawn, lists the streets under more than 30 cm).
(function () {
  const T = window.Twin;
  const PRESETS = [["14/10/2022", 795, 11], ["10/2023", 900, 72]];
  const post = (body) => T.api("/scenarios/rain", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
  const fmt = (x, d) => Number(x).toLocaleString(T.lang === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: d });
  function mk(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text) e.textContent = text;
    return e;
  }
  // items (roads / facilities) with a depth in metres anywhere in the answer
  function deepItems(obj, minM, out) {
    out = out || [];
    if (Array.isArray(obj)) obj.forEach((o) => deepItems(o, minM, out));
    else if (obj && typeof obj === "object") {
      const d = obj.max_depth_m ?? obj.depth_m;
      const n = obj.name_vi || obj.name || obj.name_en;
      if (typeof d === "number" && n) {
        const what = obj.kind && !obj.road_class ? T.t("class." + obj.kind) : "";
        const name = (T.lang === "en" && obj.name_en) || n;
        if (d > minM) out.push({ name: what && !what.startsWith("class.") ? name + " (" + what + ")" : name, depth: d });
      }
      else Object.values(obj).forEach((v) => deepItems(v, minM, out));
    }
    return out;
  }
  function form(prefix, withPresets) {
    const f = mk("form", { id: prefix + "-form", class: "rain-form" });
    f.append(mk("label", { for: prefix + "-mm" }, T.t("rain.mm")), mk("input", { id: prefix + "-mm", type: "number", min: "0", step: "1", value: "100" }));
    f.append(mk("label", { for: prefix + "-h" }, T.t("rain.hours")), mk("input", { id: prefix + "-h", type: "number", min: "0.5", step: "0.5", value: "6" }));
    if (withPresets) {
      const row = mk("div", { class: "row" });
      PRESETS.forEach(([lab, mm, h]) => {
        const b = mk("button", { type: "button", class: "rain-preset" }, lab);
        b.addEventListener("click", () => { f.querySelector("#" + prefix + "-mm").value = mm; f.querySelector("#" + prefix + "-h").value = h; });
        row.append(b);
      });
      f.append(row);
      f.append(mk("label", { for: prefix + "-drain" }, T.t("rain.drain")), mk("input", { id: prefix + "-drain", type: "number", min: "0", step: "1" }));
      f.append(mk("label", { for: prefix + "-tide" }, T.t("rain.tide")), mk("input", { id: prefix + "-tide", type: "number", step: "0.1" }));
    }
    f.append(mk("button", { type: "submit", id: prefix + "-run" }, T.t("wi.run")));
    f.append(mk("p", { id: prefix + "-status", role: "status", "aria-live": "polite" }));
    f.append(mk("div", { id: prefix + "-result", "aria-live": "polite" }));
    f.append(mk("p", { id: prefix + "-error", class: "error", role: "alert" }));
    return f;
  }
  function body(prefix, save) {
    const v = (s) => { const e = document.getElementById(prefix + "-" + s); return e && e.value !== "" ? Number(e.value) : null; };
    const b = { rain_mm: v("mm"), hours: v("h"), save };
    if (v("drain") !== null) b.drainage_mm_per_h = v("drain");
    if (v("tide") !== null) b.sea_level_m = v("tide");
    return b;
  }
  async function run(prefix, save, onDone) {
    const st = document.getElementById(prefix + "-status"), er = document.getElementById(prefix + "-error");
    er.textContent = ""; st.textContent = T.t("rain.running");
    try {
      const sc = await post(body(prefix, save));
      sc.kind = sc.kind || "rain";
      st.textContent = "";
      onDone(sc);
    } catch (e) { st.textContent = ""; er.textContent = (e && e.message) || String(e); }
  }
  function summaryText(sc) {
    const s = sc.summary || {};
    const km2 = s.flooded_area_km2 ?? s.flooded_km2;
    // "0.1-0.5", "1-2", ">=2" … shallowest first, written as the legend writes them
    const num = (k) => parseFloat(String(k).replace(/^[^0-9.]+/, "")) || 0;
    const lower = (k) => String(k).startsWith("<") ? -1 : num(k);
    const label = (k) => String(k).startsWith(">=") ? "≥ " + fmt(num(k), 1) + " m"
      : String(k).startsWith("<") ? "< " + fmt(num(k), 1) + " m"
        : String(k).split("-").map((x) => fmt(Number(x), 1)).join("–") + " m";
    const cls = s.depth_classes_km2 ? Object.entries(s.depth_classes_km2)
      .filter(([, v]) => v > 0).sort((a, b) => lower(a[0]) - lower(b[0]))
      .map(([k, v]) => label(k) + ": " + fmt(v, 2) + " km²").join(" · ") : "";
    return (km2 != null ? T.t("rain.flooded", { km2: fmt(km2, 2) }) + " " : "") + cls;
  }
  function setupPlan() {
    const host = document.querySelector("#flood-counts") && document.querySelector("#flood-counts").parentElement;
    if (!host) return;
    const box = mk("details", { id: "rain-panel", open: "" });
    box.append(mk("summary", {}, T.t("rain.title")), form("rain", true));
    host.after(box);
    riverPanel(box);
    box.querySelector("form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      run("rain", true, (sc) => {
        if (window.twinWhatIf) window.twinWhatIf.showStored(sc);
        const r = document.getElementById("rain-result");
        r.replaceChildren(mk("p", { id: "rain-summary" }, summaryText(sc)));
        const notes = (sc.summary && sc.summary.notes_i18n && sc.summary.notes_i18n[T.lang]) || [];
        const ul = mk("ul", { id: "rain-notes", class: "muted" });
        notes.forEach((n) => ul.append(mk("li", {}, n)));
        r.append(ul);
      });
    });
  }
  // River flood by stage at a gauge (POST /scenarios/river, HAND): saved, drawn like a flood
  const GAUGES = [["cam_le", "gauge.cam_le", 1.0]];  // id, name key, alert level 1 (m)
  function riverPanel(host) {
    const box = mk("details", { id: "river-panel" });
    const f = mk("form", { id: "river-form", class: "rain-form" });
    const sel = mk("select", { id: "river-gauge" });
    GAUGES.forEach(([id, key]) => sel.append(mk("option", { value: id }, T.t(key))));
    f.append(mk("label", { for: "river-gauge" }, T.t("river.gauge")), sel);
    f.append(mk("label", { for: "river-stage" }, T.t("river.stage")),
      mk("input", { id: "river-stage", type: "number", step: "0.1", value: "2.5", required: "" }));
    f.append(mk("p", { id: "river-alert", class: "muted" }, T.t("river.alertHint", { alert: fmt(GAUGES[0][2], 1) })));
    f.append(mk("button", { type: "submit", id: "river-run" }, T.t("wi.run")));
    f.append(mk("p", { id: "river-status", role: "status", "aria-live": "polite" }));
    f.append(mk("div", { id: "river-result", "aria-live": "polite" }));
    f.append(mk("p", { id: "river-error", class: "error", role: "alert" }));
    box.append(mk("summary", {}, T.t("river.title")), f);
    host.after(box);
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const st = T.$("#river-status"), er = T.$("#river-error");
      er.textContent = ""; st.textContent = T.t("rain.running");
      try {
        const sc = await T.api("/scenarios/river", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ stage_m: Number(T.$("#river-stage").value), gauge: sel.value }) });
        st.textContent = "";
        if (window.twinWhatIf) window.twinWhatIf.showStored(sc);
        const r = T.$("#river-result");
        r.replaceChildren(mk("p", { id: "river-summary" }, summaryText(sc)));
        const ul = mk("ul", { id: "river-notes", class: "muted" });
        ((sc.summary.notes_i18n && sc.summary.notes_i18n[T.lang]) || []).forEach((n) => ul.append(mk("li", {}, n)));
        r.append(ul);
      } catch (e) { st.textContent = ""; er.textContent = (e && e.message) || String(e); }
    });
    return box;
  }
  function setupOps() {
    const anchor = document.querySelector("#ops-panel");
    if (!anchor) return;
    // folded at first: open, it would squeeze the incident list above it
    const box = mk("details", { id: "forecast-panel" });
    box.append(mk("summary", {}, T.t("rain.forecast")), form("forecast", false));
    anchor.append(box);
    let layerSet = false;
    box.querySelector("form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      // stored (like a planner's run) so its depth tiles can be drawn on the console's map
      run("forecast", true, (sc) => {
        if (sc.links && sc.links.tiles && T.tokenTiles && window.Twin.viewer) {
          window.Twin.viewer.setExtra("forecast-flood", T.tokenTiles("forecast-flood-" + (sc.id || Date.now()), sc.links.tiles));
          if (T.legend) T.legend.depth("forecast-flood", { titleKey: "rain.forecastLegend" });
          layerSet = true;
        }
        // the impassable streets by name, deepest first (summary.roads.impassable.streets)
        const items = deepItems([sc.summary && sc.summary.roads && sc.summary.roads.impassable,
          sc.summary && sc.summary.facilities && sc.summary.facilities.items], 0.3);
        const r = document.getElementById("forecast-result");
        r.replaceChildren(mk("p", { id: "forecast-summary" }, summaryText(sc)));
        if (!items.length) r.append(mk("p", { id: "forecast-empty", class: "muted" }, T.t("rain.noneDeep")));
        else {
          const ul = mk("ul", { id: "forecast-list" });
          items.sort((a, b) => b.depth - a.depth).forEach((i) => ul.append(mk("li", {}, i.name + " — " + fmt(i.depth, 2) + " m")));
          r.append(mk("p", {}, T.t("rain.deepList")), ul);
        }
      });
    });
    return layerSet;
  }
  document.addEventListener("twin:ready", () => {
    if (document.getElementById("flood-slider")) setupPlan();
    else setupOps();
  }, { once: true });
})();
