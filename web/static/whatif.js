// What if: a flood at a water level (slider; depth drawn from the scenario's raster tiles,
// fetched with the token), road closures (click roads, then run) and a burst pipe (click
// a water main). Counts go to the panel; the previous flood stays beside the current one.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, D = window.deck, el = T.el;
  const W = { flood: null, prev: null, seq: 0, mode: null, closed: new Map(), timer: null };
  const COLORS = {
    closed: [200, 20, 40, 255], cut_off: [120, 60, 160, 255], building: [230, 120, 20, 255],
    route_before: [90, 90, 90, 200], route_after: [11, 110, 153, 255],
    isolated: [200, 20, 40, 255], operate: [20, 140, 60, 255], shut: [120, 120, 120, 255],
  };
  const locale = () => (T.lang === "vi" ? "vi-VN" : "en-GB");
  const num = (n, d) => (n === undefined || n === null ? "—" : Number(n).toLocaleString(locale(), { maximumFractionDigits: d || 0 }));
  const post = (path, body) => T.api(path, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
  const err = (msg) => { T.$("#whatif-error").textContent = msg || ""; };

  // -- flood ----------------------------------------------------------------------------
  function floodLayer(s) {
    return T.tokenTiles("whatif-flood-" + s.id, s.links.tiles);
  }
  function countRows(s) {
    const b = s.buildings || {}, r = s.roads || {}, imp = r.impassable || {};
    const fac = Object.entries((s.facilities && s.facilities.by_kind) || {})
      .map(([k, n]) => `${T.t("class." + k).startsWith("class.") ? k : T.t("class." + k)} ${n}`).join(", ");
    return [
      ["area", T.t("wi.area"), num(s.flooded_area_km2, 3) + " km²"],
      ["buildings", T.t("wi.buildings"), num(b.count)],
      ["population", T.t("wi.population"), num(b.population !== undefined ? b.population : s.population)],
      ["roads", T.t("wi.roads"), num(r.count)],
      ["impassable", T.t("wi.impassable"), T.t("wi.impassableVal", { n: num(imp.count), km: num((imp.length_m || 0) / 1000, 2) })],
      ["facilities", T.t("wi.facilities"), fac || "0"],
    ];
  }
  function renderFlood() {
    const table = T.$("#flood-counts"), body = table.querySelector("tbody");
    if (!W.flood) { table.hidden = true; return; }
    const now = countRows(W.flood.summary), prev = W.prev ? countRows(W.prev.summary) : null;
    T.$("#flood-prev-h").textContent = W.prev ? T.t("wi.prevAt", { m: num(W.prev.level, 1) }) : "";
    body.replaceChildren(...now.map((r, i) => el("tr", { "data-row": r[0] }, [
      el("th", { scope: "row", text: r[1] }), el("td", { class: "now", text: r[2] }),
      el("td", { class: "prev", text: prev ? prev[i][2] : "" }),
    ])));
    table.hidden = false;
  }
  async function runFlood(level) {
    const mine = ++W.seq, status = T.$("#flood-status");
    err("");
    if (!(level > 0)) {
      if (W.flood) W.prev = W.flood;
      W.flood = null; V.setExtra("whatif-flood", null); renderFlood(); status.textContent = "";
      return;
    }
    status.textContent = T.t("wi.running");
    try {
      const out = await post("/scenarios/flood", { water_level_m: level, save: true });
      if (mine !== W.seq) return;
      if (W.flood) W.prev = W.flood;
      W.flood = { id: out.id, level, summary: out.summary, links: out.links };
      V.setExtra("whatif-flood", floodLayer(W.flood));
      status.textContent = T.t("wi.floodDone", { m: num(level, 1), ms: num(out.summary.timing_ms && out.summary.timing_ms.total) });
      status.dataset.buildings = String((out.summary.buildings || {}).count || 0);
      renderFlood();
    } catch (e) {
      if (mine !== W.seq) return;
      status.textContent = "";
      err(e.message);
    }
  }
  function sliderSetup() {
    const slider = T.$("#flood-slider"), out = T.$("#flood-value");
    const show = () => {
      const v = Number(slider.value);
      out.textContent = num(v, 1) + " m";
      slider.setAttribute("aria-valuetext", out.textContent);
    };
    slider.addEventListener("input", show);
    // run once the slider is released (change), debounced against quick key presses
    slider.addEventListener("change", () => {
      show();
      clearTimeout(W.timer);
      W.timer = setTimeout(() => runFlood(Number(slider.value)), 250);
    });
    show();
  }

  // -- overlays of closures and outages ------------------------------------------------------
  function drawFeatures(id, fc) {
    if (!fc || !fc.features || !fc.features.length) { V.setExtra(id, null); return; }
    V.setExtra(id, new D.GeoJsonLayer({
      id, data: fc, pickable: false, stroked: true, filled: true,
      getLineColor: (f) => COLORS[f.properties.layer] || [200, 20, 40, 255],
      getFillColor: (f) => COLORS[f.properties.layer] || [200, 20, 40, 255],
      lineWidthUnits: "pixels", getLineWidth: (f) => (f.properties.layer === "route_before" ? 3 : 5),
      pointRadiusUnits: "pixels", getPointRadius: (f) => (f.properties.layer === "building" ? 4 : 7),
    }));
  }
  function setMode(mode) {
    if (mode && T.draw && T.draw.mode) T.draw.cancel();
    W.mode = mode;
    T.$("#closure-mode").setAttribute("aria-pressed", String(W.mode === "closure"));
    T.$("#outage-mode").setAttribute("aria-pressed", String(W.mode === "outage"));
    T.$("#closure-box").hidden = W.mode !== "closure" && !W.closed.size;
    T.$("#whatif-hint").textContent = W.mode ? T.t(W.mode === "closure" ? "wi.closeHint" : "wi.burstHint") : "";
    if (W.mode || !V.mode) V.cursor = W.mode ? "crosshair" : null;
  }
  function renderClosed() {
    T.$("#closure-list").replaceChildren(...Array.from(W.closed.entries()).map(([id, name]) =>
      el("li", {}, [(name || T.t("wi.segment", { id })) + " ",
        el("button", { type: "button", class: "icon", "aria-label": T.t("wi.remove", { id }), text: "×",
          onclick: () => { W.closed.delete(id); renderClosed(); } })])));
    T.$("#closure-run").disabled = W.closed.size === 0;
    drawFeatures("whatif-closed-pick", null);
  }
  async function runClosure() {
    err("");
    const box = T.$("#closure-result");
    box.textContent = T.t("wi.running");
    try {
      const out = await post("/scenarios/closure", { segment_ids: Array.from(W.closed.keys()), save: true });
      const s = out.summary, c = s.cut_off || {}, b = s.buildings || {};
      const times = (s.drive_times || []).map((t) => el("li", { text: T.t("wi.drive", {
        kind: T.t("class." + t.kind), before: t.before ? num(t.before.drive_s / 60, 1) : "—",
        after: t.after ? num(t.after.drive_s / 60, 1) : T.t("wi.unreachable") }) }));
      box.replaceChildren(
        el("p", { "data-kind": "cut_off", text: T.t("wi.cutOff", { n: num(c.segments), km: num((c.length_m || 0) / 1000, 2), b: num(b.count) }) }),
        el("ul", {}, times));
      drawFeatures("whatif-closure", out.features);
    } catch (e) { box.textContent = ""; err(e.message); }
  }
  async function runOutage(edgeId) {
    err("");
    const box = T.$("#outage-result");
    box.textContent = T.t("wi.running");
    try {
      const out = await post("/scenarios/outage", { edge_id: edgeId, save: true });
      const s = out.summary;
      box.replaceChildren(
        el("p", { class: "message", text: (s.message_i18n && s.message_i18n[T.lang]) || s.message }),
        el("p", { text: T.t("wi.valves") }),
        el("ul", { id: "outage-valves" }, (s.operate || []).map((d) => el("li", { text: d.name || "#" + d.id }))),
        el("p", { text: T.t("wi.noWater", { n: num((s.buildings || {}).count) }) }));
      drawFeatures("whatif-outage", out.features);
    } catch (e) { box.textContent = ""; err(e.message); }
  }
  // the feature of a layer under (or within a few pixels of) a click, even below others
  function pickOf(info, layerId) {
    const f = V.featureOf(info);
    if (f && f.layer.id === layerId) return f;
    if (!info || info.x === undefined) return null;
    const hits = V.deck.pickMultipleObjects({ x: info.x, y: info.y, radius: 6, depth: 12 });
    for (const h of hits) {
      const g = V.featureOf(h);
      if (g && g.layer.id === layerId) return g;
    }
    return null;
  }
  function onMapClick(info) {
    if (!W.mode) return false;
    const f = pickOf(info, W.mode === "closure" ? "roads" : "water_network");
    if (W.mode === "closure") {
      if (!f || f.layer.id !== "roads") { T.$("#whatif-hint").textContent = T.t("wi.pickRoad"); return true; }
      const id = Number(f.id);
      if (W.closed.has(id)) W.closed.delete(id); else W.closed.set(id, f.properties.name || "");
      T.$("#closure-box").hidden = false;
      renderClosed();
      return true;
    }
    if (!f || f.layer.id !== "water_network") { T.$("#whatif-hint").textContent = T.t("wi.pickPipe"); return true; }
    runOutage(Number(f.id));
    return true;
  }
  function clearAll() {
    W.closed.clear(); renderClosed();
    T.$("#closure-result").replaceChildren(); T.$("#outage-result").replaceChildren();
    for (const id of ["whatif-closure", "whatif-outage", "whatif-flood"]) V.setExtra(id, null);
    W.prev = W.flood; W.flood = null; renderFlood();
    T.$("#flood-slider").value = "0"; T.$("#flood-value").textContent = "0 m";
    setMode(null);
    err("");
  }

  function setup() {
    sliderSetup();
    T.$("#closure-mode").addEventListener("click", () => setMode(W.mode === "closure" ? null : "closure"));
    T.$("#outage-mode").addEventListener("click", () => setMode(W.mode === "outage" ? null : "outage"));
    T.$("#closure-run").addEventListener("click", runClosure);
    T.$("#whatif-clear").addEventListener("click", clearAll);
    renderClosed();
    const prev = V.onMapClick;
    V.onMapClick = (info, event) => onMapClick(info) || (prev ? prev(info, event) : false);
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && W.mode) setMode(null); });
    // starting to draw an area ends a what-if mode
    document.addEventListener("twin:draw", (e) => { if (e.detail.mode && W.mode) setMode(null); });
    document.addEventListener("twin:lang", () => { renderFlood(); setMode(W.mode); renderClosed(); });
  }
  document.addEventListener("twin:ready", setup, { once: true });
  window.twinWhatIf = { runFlood, runClosure, runOutage, state: W };
})();
