// The flood layer of /ops. For the selected flood incident: its latest flood scenario
// (GET /scenarios?kind=flood&incident_id=…) drawn on the map — the flooded outline and
// the depth tiles, fetched with the token as whatif.js does — with its counts; "Model
// flood" runs one for the incident (POST /scenarios/flood with incident_id: the water
// starts at the incident and, without a level, rises to its flood-tower reading). The
// layer goes with the selection, unless "all active flood incidents" is ticked. ops.js
// tells us the selection and the open incidents (`twin:ops-incident`).
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, D = window.deck, el = T.el;
  // the flooded outline in the flood ramp's dark purple, unfilled: the depth tiles show
  // through in their yellow → purple classes (legend.js), never blue like rivers or pipes
  const LINE = T.style.overlay.flood_outline, FILL = [0, 0, 0, 0];
  const S = {
    selected: null, // the selected incident (GeoJSON Feature), any category
    incidents: [], // the open incidents
    all: false,
    latest: new Map(), // incident id → its latest flood (scenario with geometry) or null
    loading: new Map(), // incident id → the request under way
    layers: new Map(), // scenario id → [outline, depth tiles]
    running: false, error: "",
  };
  const isFlood = (f) => !!f && f.properties && f.properties.category === "flood";
  const locale = () => (T.lang === "vi" ? "vi-VN" : "en-GB");
  const num = (n, d) => (n === undefined || n === null ? "—" : Number(n).toLocaleString(locale(), { maximumFractionDigits: d || 0 }));
  const when = (iso) => T.time(iso);  // Đà Nẵng time with its zone (i18n.js)

  // -- data -------------------------------------------------------------------------------
  function load(iid, fresh) {
    if (S.loading.has(iid)) return S.loading.get(iid);
    if (!fresh && S.latest.has(iid)) return Promise.resolve(S.latest.get(iid));
    const p = (async () => {
      const list = await T.api(`/scenarios?kind=flood&incident_id=${iid}&limit=1`);
      const item = (list.items || [])[0];
      const old = S.latest.get(iid);
      const s = !item ? null : old && old.id === item.id ? old : await T.api(`/scenarios/${item.id}`);
      S.latest.set(iid, s);
      return s;
    })().finally(() => S.loading.delete(iid));
    S.loading.set(iid, p);
    return p;
  }

  // -- map --------------------------------------------------------------------------------
  function bboxOf(g) {
    const b = [Infinity, Infinity, -Infinity, -Infinity];
    const walk = (c) => {
      if (typeof c[0] === "number") {
        b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]);
        b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]);
      } else c.forEach(walk);
    };
    if (g && g.coordinates) walk(g.coordinates);
    return Number.isFinite(b[0]) ? b : null;
  }
  function layersOf(s) {
    if (S.layers.has(s.id)) return S.layers.get(s.id);
    const out = [];
    const extent = bboxOf(s.geometry);
    if (s.links && s.links.tiles && extent) {
      out.push(T.tokenTiles("ops-flood-depth-" + s.id, s.links.tiles, { extent }));
    }
    if (s.geometry) {
      out.push(new D.GeoJsonLayer({
        id: "ops-flood-area-" + s.id, data: { type: "FeatureCollection", features: [{ type: "Feature", id: s.id, geometry: s.geometry, properties: { scenario: s.id, incident: s.incident_id } }] },
        pickable: false, filled: false, stroked: true, getFillColor: FILL, getLineColor: LINE,
        lineWidthUnits: "pixels", getLineWidth: 2.5,
      }));
    }
    S.layers.set(s.id, out);
    return out;
  }
  // incidents whose flood is drawn: the selected flood incident, or every open one
  function shown() {
    const ids = S.all ? S.incidents.filter(isFlood).map((f) => f.id) : [];
    if (isFlood(S.selected) && !ids.includes(S.selected.id)) ids.push(S.selected.id);
    return ids;
  }
  function renderMap() {
    const drawn = shown().map((iid) => S.latest.get(iid)).filter(Boolean);
    const keep = new Set(drawn.map((s) => s.id));
    for (const id of Array.from(S.layers.keys())) if (!keep.has(id)) S.layers.delete(id);
    V.setExtra("ops-flood", drawn.length ? drawn.flatMap(layersOf) : null);
    if (drawn.length) {
      T.legend.depth("ops-flood", { entries: [
        { key: "outline", labelKey: "legend.floodOutline", color: LINE, kind: "outline" }] });
    } else T.legend.clear("ops-flood");
  }

  // -- the block in the incident panel ---------------------------------------------------------
  function countRows(s) {
    const m = s.summary || {}, b = m.buildings || {}, imp = (m.roads || {}).impassable || {};
    const fac = m.facilities || {};
    const kinds = Object.entries(fac.by_kind || {})
      .map(([k, n]) => `${T.t("class." + k).startsWith("class.") ? k : T.t("class." + k)} ${n}`).join(", ");
    return [
      ["level", T.t("opsflood.levelRow"), num(m.water_level_m, 2) + " m"],
      ["area", T.t("wi.area"), num(m.flooded_area_km2, 3) + " km²"],
      ["buildings", T.t("wi.buildings"), num(b.count)],
      ["population", T.t("wi.population"), num(b.population !== undefined ? b.population : m.population)],
      ["impassable", T.t("wi.impassable"), T.t("wi.impassableVal", { n: num(imp.count), km: num((imp.length_m || 0) / 1000, 2) })],
      ["facilities", T.t("wi.facilities"), num(fac.count || 0) + (kinds ? " (" + kinds + ")" : "")],
    ];
  }
  function renderBlock() {
    const block = T.$("#flood-block");
    const f = S.selected;
    if (!isFlood(f)) { block.hidden = true; return; }
    block.hidden = false;
    const s = S.latest.get(f.id), status = T.$("#opsflood-status"), table = T.$("#opsflood-counts");
    T.$("#opsflood-error").textContent = S.error;
    T.$("#opsflood-model").disabled = S.running;
    delete status.dataset.scenario;
    if (S.running) status.textContent = T.t("opsflood.running");
    else if (s === undefined) status.textContent = T.t("opsflood.loading");
    else if (s === null) status.textContent = T.t("opsflood.none");
    else {
      const m = s.summary || {}, reading = s.params && s.params.reading;
      status.textContent = T.t(reading ? "opsflood.atReading" : "opsflood.atLevel", { m: num(m.water_level_m, 2), when: when(s.created_at) })
        + (m.flooded_cells === 0 ? " " + T.t("opsflood.dry") : "");
      status.dataset.scenario = String(s.id);
    }
    if (!s) { table.hidden = true; const old = T.$("#opsflood-method"); if (old) old.remove(); return; }
    table.querySelector("tbody").replaceChildren(...countRows(s).map((r) => el("tr", { "data-row": r[0] }, [
      el("th", { scope: "row", text: r[1] }), el("td", { text: r[2] }),
    ])));
    table.hidden = false;
    // the model, its data and its limits, in the UI language (the answer's notes)
    const m = s.summary || {};
    const notes = (m.notes_i18n && m.notes_i18n[T.lang]) || m.notes || [];
    const old = T.$("#opsflood-method");
    if (old) old.remove();
    table.after(el("details", { class: "method", id: "opsflood-method", open: true }, [
      el("summary", { text: T.t("wi.method") }),
      el("ul", {}, (notes.length ? notes : [T.t("wi.floodMethodDefault")]).map((n) => el("li", { text: n }))),
    ]));
  }
  function render() { renderBlock(); renderMap(); }

  async function refreshOne(iid, fresh) {
    try {
      await load(iid, fresh);
    } catch (e) {
      if (S.selected && S.selected.id === iid) S.error = e.message;
    }
    render();
  }
  async function model(e) {
    if (e) e.preventDefault();
    const f = S.selected;
    if (!isFlood(f) || S.running) return;
    const raw = T.$("#opsflood-level").value.trim();
    const body = { incident_id: f.id, save: true };
    if (raw !== "") {
      const v = Number(raw.replace(",", "."));
      if (!Number.isFinite(v) || v < 0 || v > 1000) { S.error = T.t("opsflood.badLevel"); renderBlock(); return; }
      body.water_level_m = v;
    }
    S.running = true; S.error = ""; renderBlock();
    try {
      const out = await T.api("/scenarios/flood?include=geometry", {
        method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
      S.latest.set(f.id, out);
    } catch (err) {
      S.error = err.message;
    }
    S.running = false;
    render();
  }

  function onIncidents(e) {
    const d = e.detail || {};
    const before = S.selected ? S.selected.id : null;
    S.selected = d.selected || null;
    S.incidents = d.incidents || [];
    const now = S.selected ? S.selected.id : null;
    if (now !== before) { S.error = ""; T.$("#opsflood-level").value = ""; }
    // a newly selected flood incident: ask again (another operator may have modelled it)
    if (isFlood(S.selected) && now !== before) refreshOne(now, true);
    if (S.all) for (const f of S.incidents.filter(isFlood)) if (!S.latest.has(f.id)) refreshOne(f.id, false);
    render();
  }
  function setAll(on) {
    S.all = on;
    if (on) for (const f of S.incidents.filter(isFlood)) refreshOne(f.id, true);
    render();
  }

  function setup() {
    T.$("#opsflood-form").addEventListener("submit", model);
    T.$("#opsflood-all").addEventListener("change", (e) => setAll(e.target.checked));
    document.addEventListener("twin:lang", renderBlock);
  }
  // a flood modelled for an incident (by anyone) arrives on its timeline, live
  function onLive(e) {
    const d = e.detail || {};
    if (d.kind !== "flood_modelled" || !d.feature) return;
    const iid = d.feature.id;
    if ((S.selected && S.selected.id === iid) || (S.all && S.latest.has(iid))) refreshOne(iid, true);
    else S.latest.delete(iid);
  }
  // listen at once: ops.js reports its first list as soon as it has loaded
  document.addEventListener("twin:ops-incident", onIncidents);
  document.addEventListener("twin:incident", onLive);
  document.addEventListener("twin:ready", setup, { once: true });
  window.twinOpsFlood = { model, state: S };
})();
