// What if: a flood at a water level (slider; depth drawn from the scenario's raster tiles,
// fetched with the token, in the depth ramp of legend.js), road closures (click roads,
// optionally pick the origin, then run: each nearest facility with its drive time before
// → after and both routes) and a burst pipe (click a water main: the valves to close on
// the map and in a list with their streets, the isolated pipes, the buildings and people
// without water). Each result states its method and limits; starting another kind of
// scenario clears the overlay, legend and text of the previous kind.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, D = window.deck, S = T.style, L = T.legend, el = T.el;
  const C = S.overlay;
  const W = { flood: null, prev: null, seq: 0, mode: null, closed: new Map(), timer: null,
    origin: null, kind: null, closure: null, outage: null };
  const locale = () => (T.lang === "vi" ? "vi-VN" : "en-GB");
  const num = (n, d) => (n === undefined || n === null ? "—" : Number(n).toLocaleString(locale(), { maximumFractionDigits: d || 0 }));
  // every answer is announced (twin:scenario): the saved-scenarios list shows a stored one
  const post = (path, body) => T.api(path, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } })
    .then((out) => { document.dispatchEvent(new CustomEvent("twin:scenario", { detail: out })); return out; });
  const err = (msg) => { T.$("#whatif-error").textContent = msg || ""; };
  const nameOf = (f) => (T.lang === "en" && f.name_en) || f.name_vi || f.name_en || T.t("class." + f.kind);

  // notes of an answer (notes_i18n in the UI language) or a fallback, as a "method" block
  function methodBlock(id, summary, fallbackKey) {
    const notes = (summary && summary.notes_i18n && summary.notes_i18n[T.lang]) || (summary && summary.notes) || [];
    const lines = notes.length ? notes : [T.t(fallbackKey)];
    return el("details", { class: "method", id, open: true }, [
      el("summary", { text: T.t("wi.method") }),
      el("ul", {}, lines.map((n) => el("li", { text: n }))),
    ]);
  }

  // one kind of scenario on the map at a time: a new kind clears the others
  function startKind(kind) {
    if (W.kind === kind) return;
    if (kind !== "flood") clearFlood();
    if (kind !== "closure") clearClosure();
    if (kind !== "outage") clearOutage();
    W.kind = kind;
  }

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
    const old = T.$("#flood-method");
    if (old) old.remove();
    if (!W.flood) { table.hidden = true; L.clear("whatif-flood"); return; }
    const now = countRows(W.flood.summary), prev = W.prev ? countRows(W.prev.summary) : null;
    T.$("#flood-prev-h").textContent = W.prev ? T.t("wi.prevAt", { m: num(W.prev.level, 1) }) : "";
    body.replaceChildren(...now.map((r, i) => el("tr", { "data-row": r[0] }, [
      el("th", { scope: "row", text: r[1] }), el("td", { class: "now", text: r[2] }),
      el("td", { class: "prev", text: prev ? prev[i][2] : "" }),
    ])));
    table.hidden = false;
    table.after(methodBlock("flood-method", W.flood.summary, "wi.floodMethodDefault"));
    L.depth("whatif-flood", { title: T.t("legend.flood", { m: num(W.flood.level, 1) }) });
  }
  function clearFlood() {
    clearTimeout(W.timer);
    W.seq++;
    if (W.flood) W.prev = W.flood;
    W.flood = null;
    V.setExtra("whatif-flood", null);
    T.$("#flood-slider").value = "0";
    T.$("#flood-value").textContent = "0 m";
    T.$("#flood-status").textContent = "";
    renderFlood();
  }
  async function runFlood(level) {
    const mine = ++W.seq, status = T.$("#flood-status");
    err("");
    if (!(level > 0)) {
      if (W.flood) W.prev = W.flood;
      W.flood = null; V.setExtra("whatif-flood", null); renderFlood(); status.textContent = "";
      return;
    }
    startKind("flood");
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

  // -- closures ----------------------------------------------------------------------------
  const color = (f) => C[f.properties.layer] || C.closed;
  function closureLayers(fc) {
    const feats = fc.features || [];
    const of = (...names) => feats.filter((f) => names.includes(f.properties.layer));
    const routes = (side) => of(side).filter((f) => f.properties.origin);
    const out = [
      new D.GeoJsonLayer({ id: "whatif-closure", data: { type: "FeatureCollection", features: of("closed", "cut_off", "building") },
        pickable: false, stroked: true, filled: true, getLineColor: color, getFillColor: color,
        lineWidthUnits: "pixels", getLineWidth: (f) => (f.properties.layer === "closed" ? 6 : 4),
        pointRadiusUnits: "pixels", getPointRadius: 4 }),
      // before: grey dashes (cut for the zoom drawn at), after: solid in the overlay colour
      new D.PathLayer({ id: "whatif-closure-before", data: S.dashes(routes("route_before").map((f) => f.geometry.coordinates), W.dashZoom = Math.round(zoomNow())),
        getPath: (d) => d, getColor: C.route_before, widthUnits: "pixels", getWidth: 4, twinDashed: true }),
      new D.PathLayer({ id: "whatif-closure-after", data: routes("route_after"),
        getPath: (f) => f.geometry.coordinates, getColor: C.route_after, widthUnits: "pixels", getWidth: 4,
        capRounded: true, jointRounded: true }),
      new D.ScatterplotLayer({ id: "whatif-closure-points", data: of("origin", "facility"),
        getPosition: (f) => f.geometry.coordinates, radiusUnits: "pixels",
        getRadius: (f) => (f.properties.layer === "origin" ? 7 : 6), stroked: true, lineWidthUnits: "pixels",
        getLineWidth: 3, getFillColor: [255, 255, 255, 255], getLineColor: (f) => C[f.properties.layer] }),
      S.names("whatif-closure-names", of("facility").map((f) => ({ pos: f.geometry.coordinates,
        text: (T.lang === "en" && f.properties.name_en) || f.properties.name_vi || "" }))),
    ];
    return out;
  }
  const zoomNow = () => (V.getViewState() || { zoom: 14 }).zoom;
  // the dashes of the before routes follow the zoom
  document.addEventListener("twin:view", () => {
    if (W.closure && Math.round(zoomNow()) !== W.dashZoom) V.setExtra("whatif-closure", closureLayers(W.closure.features || { features: [] }));
  });
  function closureLegend() {
    L.set("whatif-closure", { titleKey: "legend.closure", entries: [
      { key: "closed", labelKey: "legend.closed", color: C.closed, kind: "line" },
      { key: "cut_off", labelKey: "legend.cutOff", color: C.cut_off, kind: "line" },
      { key: "building", labelKey: "legend.stranded", color: C.building, kind: "point" },
      { key: "route_before", labelKey: "legend.routeBefore", color: C.route_before, kind: "dash" },
      { key: "route_after", labelKey: "legend.routeAfter", color: C.route_after, kind: "line" },
      { key: "origin", labelKey: "legend.origin", color: C.origin, kind: "ring" },
      { key: "facility", labelKey: "legend.facility", color: C.facility, kind: "ring" },
    ] });
  }
  function drawOrigin() {
    if (!W.origin) { V.setExtra("whatif-origin", null); return; }
    V.setExtra("whatif-origin", new D.ScatterplotLayer({ id: "whatif-origin", data: [W.origin],
      getPosition: (d) => d, radiusUnits: "pixels", getRadius: 7, stroked: true, lineWidthUnits: "pixels",
      getLineWidth: 3, getFillColor: [255, 255, 255, 255], getLineColor: C.origin }));
  }
  function placeText(o) {
    if (!o) return "";
    if (o.source === "given") {
      const at = T.t("wi.originPicked", { lat: num(o.lat, 5), lon: num(o.lon, 5) });
      return o.road ? at + ", " + T.t("wi.originNear", { road: o.road }) : at;
    }
    return T.t("wi.originMid", { road: o.road || T.t("wi.unnamedRoad") });
  }
  function renderOrigin() {
    const box = T.$("#closure-origin");
    if (!box) return;
    T.$("#closure-origin-pick").setAttribute("aria-pressed", String(W.mode === "origin"));
    T.$("#closure-origin-text").textContent = W.origin
      ? T.t("wi.origin") + ": " + T.t("wi.originPicked", { lat: num(W.origin[1], 5), lon: num(W.origin[0], 5) })
      : T.t("wi.originDefault");
    T.$("#closure-origin-clear").hidden = !W.origin;
  }
  function renderClosureResult() {
    const box = T.$("#closure-result");
    const out = W.closure;
    if (!out) { box.replaceChildren(); return; }
    const s = out.summary, c = s.cut_off || {}, b = s.buildings || {};
    const facs = (s.facilities || []).map((f) => {
      const mins = (x) => num(x / 60, 1);
      const key = f.unreachable ? "wi.facLost" : f.changed ? "wi.facTime" : "wi.facSame";
      return el("li", { "data-kind": f.kind, "data-facility": String(f.id), "data-changed": String(!!f.changed),
        text: T.t(key, { name: nameOf(f), before: mins(f.before_s), after: f.after_s === null ? "" : mins(f.after_s) }) });
    });
    box.replaceChildren(
      el("p", { "data-kind": "cut_off", text: T.t("wi.cutOff", { n: num(c.segments), km: num((c.length_m || 0) / 1000, 2), b: num(b.count) }) }),
      el("p", { class: "from", text: T.t("wi.from", { place: placeText(s.origin) }) }),
      facs.length ? el("ul", { id: "closure-facilities" }, facs) : el("p", { class: "muted", id: "closure-facilities-none", text: T.t("wi.noFacility") }),
      methodBlock("closure-method", s, "wi.method"));
  }
  function clearClosure() {
    W.closed.clear(); W.closure = null; W.origin = null;
    if (T.$("#closure-result")) renderClosed();
    renderClosureResult(); renderOrigin();
    V.setExtra("whatif-closure", null); V.setExtra("whatif-origin", null);
    L.clear("whatif-closure");
  }
  function setMode(mode) {
    if (mode && T.draw && T.draw.mode) T.draw.cancel();
    W.mode = mode;
    // a burst is picked on the water network: the utilities view turns its layer on
    if (mode === "outage" && V.byId.water_network && !V.enabled.has("water_network")) V.setEnabled("water_network", true);
    T.$("#closure-mode").setAttribute("aria-pressed", String(W.mode === "closure" || W.mode === "origin"));
    T.$("#outage-mode").setAttribute("aria-pressed", String(W.mode === "outage"));
    T.$("#closure-box").hidden = W.mode !== "closure" && W.mode !== "origin" && !W.closed.size && !W.closure;
    const hint = { closure: "wi.closeHint", outage: "wi.burstHint", origin: "wi.originHint" }[W.mode];
    T.$("#whatif-hint").textContent = hint ? T.t(hint) : "";
    if (W.mode || !V.mode) V.cursor = W.mode ? "crosshair" : null;
    renderOrigin();
  }
  function renderClosed() {
    T.$("#closure-list").replaceChildren(...Array.from(W.closed.entries()).map(([id, name]) =>
      el("li", {}, [(name || T.t("wi.segment", { id })) + " ",
        el("button", { type: "button", class: "icon", "aria-label": T.t("wi.remove", { id }), text: "×",
          onclick: () => { W.closed.delete(id); renderClosed(); } })])));
    T.$("#closure-run").disabled = W.closed.size === 0;
  }
  async function runClosure() {
    err("");
    startKind("closure");
    const box = T.$("#closure-result");
    box.textContent = T.t("wi.running");
    try {
      const body = { segment_ids: Array.from(W.closed.keys()), samples: 0, save: true };
      if (W.origin) body.origin = W.origin;
      const out = await post("/scenarios/closure", body);
      W.closure = out;
      renderClosureResult();
      V.setExtra("whatif-closure", closureLayers(out.features || { features: [] }));
      V.setExtra("whatif-origin", null);
      closureLegend();
      if (W.mode === "origin") setMode("closure");
    } catch (e) { box.textContent = ""; err(e.message); }
  }

  // -- outages ---------------------------------------------------------------------------
  function valveText(d) {
    const name = d.name || T.t("wi.valveN", { id: d.id });
    const street = T.lang === "en" ? d.street_en || d.street : d.street;
    return street ? T.t("wi.valveAt", { name, street }) : T.t("wi.valveNoStreet", { name });
  }
  function outageLayers(fc) {
    const feats = fc.features || [];
    const of = (...names) => feats.filter((f) => names.includes(f.properties.layer));
    const pipeColor = (f) => (f.properties.layer === "isolated" ? C.isolated : C.pipe_cut);
    const valves = of("operate", "shut");
    return [
      new D.GeoJsonLayer({ id: "whatif-outage", data: { type: "FeatureCollection", features: of("isolated", "cut_off") },
        pickable: false, stroked: true, filled: false, getLineColor: pipeColor, lineWidthUnits: "pixels",
        getLineWidth: (f) => (f.properties.layer === "isolated" ? 7 : 4), lineCapRounded: true }),
      new D.ScatterplotLayer({ id: "whatif-outage-buildings", data: of("building"), getPosition: (f) => f.geometry.coordinates,
        radiusUnits: "pixels", getRadius: 4, getFillColor: C.no_service, stroked: true, getLineColor: [255, 255, 255, 255],
        lineWidthUnits: "pixels", getLineWidth: 1 }),
      new D.ScatterplotLayer({ id: "whatif-outage-valves", data: valves, getPosition: (f) => f.geometry.coordinates,
        radiusUnits: "pixels", getRadius: 8, stroked: true, lineWidthUnits: "pixels", getLineWidth: 3,
        getFillColor: [255, 255, 255, 255], getLineColor: (f) => (f.properties.layer === "operate" ? C.operate : C.shut) }),
      S.names("whatif-outage-names", valves.filter((f) => f.properties.layer === "operate").map((f) => ({
        pos: f.geometry.coordinates, text: f.properties.name || T.t("wi.valveN", { id: f.properties.id }) }))),
    ];
  }
  function outageLegend() {
    L.set("whatif-outage", { titleKey: "legend.outage", entries: [
      { key: "isolated", labelKey: "legend.isolated", color: C.isolated, kind: "line" },
      { key: "cut_off", labelKey: "legend.outCut", color: C.pipe_cut, kind: "line" },
      { key: "operate", labelKey: "legend.operate", color: C.operate, kind: "ring" },
      { key: "shut", labelKey: "legend.shut", color: C.shut, kind: "ring" },
      { key: "building", labelKey: "legend.noService", color: C.no_service, kind: "point" },
    ] });
  }
  function renderOutageResult() {
    const box = T.$("#outage-result");
    const out = W.outage;
    if (!out) { box.replaceChildren(); return; }
    const s = out.summary, iso = s.isolated || {}, cut = s.cut_off || {}, b = s.buildings || {};
    box.replaceChildren(
      el("p", { class: "message", text: (s.message_i18n && s.message_i18n[T.lang]) || s.message }),
      el("p", { text: T.t("wi.valves") }),
      el("ul", { id: "outage-valves" }, (s.operate || []).map((d) => el("li", { "data-valve": String(d.id), text: valveText(d) }))),
      el("p", { "data-kind": "isolated", text: T.t("wi.isolatedPipes", { n: num(iso.count), km: num((iso.length_m || 0) / 1000, 2), c: num(cut.count) }) }),
      el("p", { "data-kind": "buildings", text: T.t("wi.noService", { n: num(b.count), p: num(b.population) }) }),
      methodBlock("outage-method", s, "wi.method"));
  }
  function clearOutage() {
    W.outage = null;
    renderOutageResult();
    V.setExtra("whatif-outage", null);
    L.clear("whatif-outage");
  }
  async function runOutage(edgeId) {
    err("");
    startKind("outage");
    const box = T.$("#outage-result");
    box.textContent = T.t("wi.running");
    try {
      W.outage = await post("/scenarios/outage", { edge_id: edgeId, save: true });
      renderOutageResult();
      V.setExtra("whatif-outage", outageLayers(W.outage.features || { features: [] }));
      outageLegend();
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
    if (W.mode === "origin") {
      if (!info || !info.coordinate) return true;
      W.origin = [Number(info.coordinate[0].toFixed(6)), Number(info.coordinate[1].toFixed(6))];
      drawOrigin();
      setMode("closure");
      return true;
    }
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
    clearClosure(); clearOutage(); clearFlood();
    W.kind = null;
    setMode(null);
    err("");
  }

  function originControls() {
    const run = T.$("#closure-run");
    const box = el("div", { id: "closure-origin", class: "origin" }, [
      el("p", { id: "closure-origin-text", class: "muted", "aria-live": "polite" }),
      el("div", { class: "row" }, [
        el("button", { type: "button", id: "closure-origin-pick", "aria-pressed": "false", text: T.t("wi.originPick"),
          onclick: () => setMode(W.mode === "origin" ? "closure" : "origin") }),
        el("button", { type: "button", id: "closure-origin-clear", hidden: true, text: T.t("wi.originClear"),
          onclick: () => { W.origin = null; drawOrigin(); renderOrigin(); } }),
      ]),
    ]);
    run.before(box);
  }
  function relabel() {
    const pick = T.$("#closure-origin-pick"), clear = T.$("#closure-origin-clear");
    if (pick) pick.textContent = T.t("wi.originPick");
    if (clear) clear.textContent = T.t("wi.originClear");
  }

  function setup() {
    sliderSetup();
    originControls();
    T.$("#closure-mode").addEventListener("click", () => setMode(W.mode === "closure" || W.mode === "origin" ? null : "closure"));
    T.$("#outage-mode").addEventListener("click", () => setMode(W.mode === "outage" ? null : "outage"));
    T.$("#closure-run").addEventListener("click", runClosure);
    T.$("#whatif-clear").addEventListener("click", clearAll);
    renderClosed();
    renderOrigin();
    const prev = V.onMapClick;
    V.onMapClick = (info, event) => onMapClick(info) || (prev ? prev(info, event) : false);
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && W.mode) setMode(W.mode === "origin" ? "closure" : null); });
    // starting to draw an area ends a what-if mode
    document.addEventListener("twin:draw", (e) => { if (e.detail.mode && W.mode) setMode(null); });
    document.addEventListener("twin:lang", () => {
      relabel(); renderFlood(); setMode(W.mode); renderClosed(); renderClosureResult(); renderOutageResult();
      if (W.closure) V.setExtra("whatif-closure", closureLayers(W.closure.features || { features: [] }));
    });
  }
  // a stored scenario (GET /scenarios/{id}, with features for a closure or an outage)
  // drawn and described as when it was run (saved scenarios, scenarios.js)
  const DEPTH = ["flood", "rain", "river"];
  function layersOf(sc, prefix) {
    if (DEPTH.includes(sc.kind)) return sc.links && sc.links.tiles ? [T.tokenTiles((prefix || "") + "whatif-flood-" + sc.id, sc.links.tiles)] : [];
    const fc = sc.features || { features: [] };
    const out = sc.kind === "closure" ? closureLayers(fc) : outageLayers(fc);
    return prefix ? out.map((l) => l.clone({ id: prefix + l.id })) : out;
  }
  function showStored(sc) {
    err("");
    const kind = DEPTH.includes(sc.kind) ? "flood" : sc.kind;
    startKind(kind);
    W.kind = kind;
    if (kind === "flood") {
      W.seq++;
      if (W.flood && W.flood.id !== sc.id) W.prev = W.flood;
      W.flood = { id: sc.id, level: sc.summary.water_level_m, summary: sc.summary, links: sc.links };
      V.setExtra("whatif-flood", layersOf(sc)[0] || null);
      renderFlood();
    } else if (kind === "closure") {
      W.closure = sc;
      T.$("#closure-box").hidden = false;
      renderClosureResult();
      V.setExtra("whatif-closure", layersOf(sc));
      closureLegend();
    } else {
      W.outage = sc;
      renderOutageResult();
      V.setExtra("whatif-outage", layersOf(sc));
      outageLegend();
    }
  }
  document.addEventListener("twin:ready", setup, { once: true });
  window.twinWhatIf = { runFlood, runClosure, runOutage, clearAll, showStored, layersOf, state: W };
})();
