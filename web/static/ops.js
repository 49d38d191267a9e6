// The emergency console: the live incident list (GET /incidents, kept current by the
// `incident` events of /live), incidents on the map, and for the selected one its
// details, the allowed next statuses, a public warning, and help: the nearest hospitals
// by drive time (routes drawn) and what lies around it.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, D = window.deck, el = T.el;
  // allowed next statuses (twin/incidents/lifecycle.py); the server has the last word (409)
  const NEXT = {
    reported: ["verified", "closed"], verified: ["dispatched", "resolved", "closed"],
    dispatched: ["en_route", "verified", "closed"], en_route: ["on_scene", "dispatched", "closed"],
    on_scene: ["resolved", "closed"], resolved: ["closed", "on_scene"], closed: [],
  };
  const SEV = { 1: [250, 220, 80], 2: [250, 180, 60], 3: [245, 130, 40], 4: [230, 70, 40], 5: [180, 0, 40] };
  const OPEN = "reported,verified,dispatched,en_route,on_scene,resolved";
  const byId = new Map();
  let selected = null, help = null, helpSeq = 0, categories = {};

  const sevColor = (p) => SEV[p.severity] || [230, 70, 40];
  const locale = () => (T.lang === "vi" ? "vi-VN" : "en-GB");
  const num = (n, d) => Number(n || 0).toLocaleString(locale(), { maximumFractionDigits: d || 0 });
  function catName(code) {
    const c = categories[code];
    return c ? (T.lang === "en" ? c.name_en : c.name_vi) || code : code;
  }
  function titleOf(f) { return f.properties.title || catName(f.properties.category) || "#" + f.id; }
  const when = (iso) => T.time(iso);  // Đà Nẵng time with its zone (i18n.js)
  function sorted() {
    return Array.from(byId.values()).sort((a, b) =>
      String(b.properties.created_at || "").localeCompare(String(a.properties.created_at || "")) || b.id - a.id);
  }

  // -- list ----------------------------------------------------------------------------
  function renderList() {
    const ul = T.$("#incident-list");
    const feats = sorted();
    const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.incident;
    ul.replaceChildren(...feats.map((f) => {
      const p = f.properties;
      return el("li", { "data-id": String(f.id), "data-status": p.status }, [
        el("button", { type: "button", class: "incident", "data-incident": String(f.id),
          "aria-current": selected === f.id ? "true" : "false",
          onclick: () => select(f.id, true) }, [
          el("span", { class: "sev", style: "--c:rgb(" + sevColor(p).join(",") + ")",
            title: T.t("ops.severity", { n: p.severity || "?" }), "aria-hidden": "true" }),
          el("span", { class: "name", text: titleOf(f) }),
          el("span", { class: "status-badge", "data-status": p.status, text: T.t("ops.status." + p.status) }),
          el("span", { class: "when", text: [T.t("ops.severity", { n: p.severity || "?" }), p.ward, when(p.created_at)].filter(Boolean).join(" · ") }),
        ]),
      ]);
    }));
    T.$("#ops-count").textContent = T.t("ops.count", { n: feats.length });
    if (focused) { const b = ul.querySelector(`[data-incident="${focused}"]`); if (b) b.focus(); }
  }
  // arrow keys move between incidents in the list
  function listKeys(e) {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const items = Array.from(T.$("#incident-list").querySelectorAll("button.incident"));
    const i = items.indexOf(document.activeElement);
    if (i < 0) return;
    const next = items[(i + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length];
    if (next) { next.focus(); e.preventDefault(); }
  }

  // -- map -------------------------------------------------------------------------------
  function renderMap() {
    const feats = sorted();
    V.setExtra("ops-incidents", new D.GeoJsonLayer({
      id: "ops-incidents", data: { type: "FeatureCollection", features: feats }, pickable: true,
      pointType: "circle", filled: true, stroked: true,
      getFillColor: (f) => sevColor(f.properties).concat([f.id === selected ? 255 : 220]),
      getLineColor: (f) => (f.id === selected ? [20, 20, 20, 255] : [255, 255, 255, 255]),
      lineWidthUnits: "pixels", getLineWidth: (f) => (f.id === selected ? 3 : 1.5),
      pointRadiusUnits: "pixels", getPointRadius: (f) => (f.id === selected ? 11 : 8),
      updateTriggers: { getFillColor: selected, getLineColor: selected, getLineWidth: selected, getPointRadius: selected },
    }));
  }
  function renderHelpLayers() {
    if (!help || !help.nearest.length) { V.setExtra("ops-help", null); T.legend.clear("ops-help"); return; }
    // routes and hospitals in the overlay teal (not the incidents' red), names on the map
    const O = T.style.overlay;
    V.setExtra("ops-help", [
      new D.PathLayer({
        id: "ops-routes", data: help.nearest, getPath: (d) => d.route.coordinates,
        getColor: O.help_route, widthUnits: "pixels", getWidth: 5, capRounded: true, jointRounded: true,
      }),
      new D.ScatterplotLayer({
        id: "ops-hospitals", data: help.nearest, getPosition: (d) => [d.lon, d.lat],
        radiusUnits: "pixels", getRadius: 7, getFillColor: [255, 255, 255, 255],
        getLineColor: O.hospital, stroked: true, lineWidthUnits: "pixels", getLineWidth: 3,
      }),
      // name and drive time in the overlay colour (the basemap's own label is the name only)
      T.style.names("ops-hospital-names", help.nearest.map((h) => ({ pos: [h.lon, h.lat],
        text: ((T.lang === "en" && h.name_en) || h.name_vi || h.name_en || "") + " · " +
          T.t("legend.minutes", { min: num(h.eta_min, 1) }) })), { getColor: T.style.overlay.hospital }),
    ]);
    T.legend.set("ops-help", { titleKey: "legend.help", entries: [
      { key: "route", labelKey: "legend.helpRoute", color: O.help_route, kind: "line" },
      { key: "hospital", labelKey: "legend.hospital", color: O.hospital, kind: "ring" },
    ] });
  }

  // -- details ---------------------------------------------------------------------------
  function renderDetail() {
    const panel = T.$("#incident-panel");
    const f = selected !== null ? byId.get(selected) : null;
    // add-ons (opsflood.js) follow the selection and the open incidents from here
    document.dispatchEvent(new CustomEvent("twin:ops-incident", { detail: { selected: f || null, incidents: sorted() } }));
    if (!f) { panel.hidden = true; return; }
    const p = f.properties;
    T.$("#inc-h").textContent = titleOf(f);
    const rows = [
      ["ops.f.category", catName(p.category)], ["ops.f.severity", p.severity],
      ["ops.f.status", T.t("ops.status." + p.status)], ["ops.f.address", p.address],
      ["ops.f.ward", p.ward], ["ops.f.created", when(p.created_at)], ["ops.f.sla", when(p.sla_due)],
      ["ops.f.units", (p.assigned_units || []).join(", ")], ["ops.f.public", p.public ? T.t("yes") : T.t("no")],
      ["ops.f.reporter", [p.reporter_name, p.reporter_phone, p.reporter_email].filter(Boolean).join(" · ")],
      ["ops.f.description", p.description],
    ];
    T.$("#inc-body").replaceChildren(...rows.filter((r) => r[1] !== undefined && r[1] !== null && r[1] !== "")
      .map(([k, v]) => el("div", { class: "kv" }, [el("dt", { text: T.t(k) }), el("dd", { text: String(v) })])));
    const next = NEXT[p.status] || [];
    T.$("#inc-actions").replaceChildren(...next.filter((s) => s !== "closed").map((s) =>
      el("button", { type: "button", "data-status": s, text: T.t("ops.do." + s), onclick: () => transition(s) })));
    T.$("#inc-closing").hidden = !next.includes("closed");
    T.$("#inc-publish").disabled = p.status === "closed";
    const pub = T.$("#inc-public");
    pub.textContent = T.t(p.public ? "ops.hide" : "ops.show");
    pub.setAttribute("aria-pressed", p.public ? "true" : "false");
    pub.disabled = p.status === "closed";
    const units = T.$("#inc-units");
    if (document.activeElement !== units) units.value = (p.assigned_units || []).join(", ");
    panel.hidden = false;
  }
  function renderHelp() {
    const ol = T.$("#inc-nearest"), ul = T.$("#inc-around");
    if (!help) { ol.replaceChildren(); ul.replaceChildren(); return; }
    if (help.loading) { ol.replaceChildren(el("li", { text: T.t("ops.loading") })); ul.replaceChildren(); return; }
    if (help.error) { ol.replaceChildren(el("li", { class: "error", text: help.error })); ul.replaceChildren(); return; }
    ol.replaceChildren(...(help.nearest.length ? help.nearest.map((h) => el("li", { class: "hospital" }, [
      el("strong", { text: (T.lang === "en" && h.name_en) || h.name_vi || h.name_en || "" }),
      " — " + T.t("ops.eta", { min: num(h.eta_min, 1), km: num((h.route_m || h.distance_m || 0) / 1000, 2) }),
    ])) : [el("li", { text: T.t("ops.noHospital") })]));
    const a = help.around || {};
    const b = a.buildings || {}, fac = a.facilities || {}, un = a.utility_nodes || {};
    ul.replaceChildren(
      el("li", { "data-kind": "buildings", text: T.t("ops.aroundBuildings", { n: num(b.count), people: num(b.population) }) }),
      el("li", { "data-kind": "facilities", text: T.t("ops.aroundFacilities", { n: num(fac.count),
        kinds: Object.entries(fac.by_kind || {}).map(([k, n]) => `${T.t("class." + k).startsWith("class.") ? k : T.t("class." + k)} ${n}`).join(", ") }) }),
      el("li", { "data-kind": "utility_nodes", text: T.t("ops.aroundUtility", { n: num(un.count) }) }),
    );
  }
  async function loadHelp(id) {
    const mine = ++helpSeq;
    help = { loading: true, nearest: [] };
    renderHelp(); renderHelpLayers();
    try {
      const body = await T.api(`/analysis/incident/${id}?kind=hospital&k=3&radius=300`);
      if (mine !== helpSeq) return;
      help = { nearest: body.nearest || [], around: body.around };
    } catch (e) {
      if (mine !== helpSeq) return;
      help = { error: e.message, nearest: [] };
    }
    renderHelp(); renderHelpLayers();
  }
  function select(id, fly) {
    if (id === null || !byId.has(id)) {
      selected = null; help = null; helpSeq++;
      renderDetail(); renderHelp(); renderHelpLayers(); renderList(); renderMap();
      return;
    }
    const changed = selected !== id;
    selected = id;
    T.$("#inc-msg").textContent = "";
    renderDetail(); renderList(); renderMap();
    if (changed) loadHelp(id);
    const g = byId.get(id).geometry;
    if (fly && g && g.type === "Point") V.flyTo({ lon: g.coordinates[0], lat: g.coordinates[1], zoom: Math.max(15, (V.getViewState() || {}).zoom || 15) });
  }

  // -- actions ----------------------------------------------------------------------------
  function upsert(f) {
    if (!f || f.id === undefined) return;
    if (f.properties.status === "closed") byId.delete(f.id); else byId.set(f.id, f);
  }
  async function act(path, body, doneKey) {
    const msg = T.$("#inc-msg");
    msg.textContent = "";
    try {
      const out = await T.api(path, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
      if (out && out.type === "Feature") { upsert(out); }
      msg.textContent = T.t(doneKey);
      refresh();
      return out;
    } catch (e) {
      msg.textContent = e.message;
      return null;
    }
  }
  function transition(status) {
    const id = selected;
    const body = { status };
    if (status === "closed") body.reason = T.$("#inc-reason").value;
    return act(`/incidents/${id}/transition`, body, "ops.done");
  }
  // an edit names the version it was made on (If-Match): someone else's change in between
  // answers 412, and the incident is reloaded instead of overwritten
  async function togglePublic() {
    const f = byId.get(selected);
    if (!f) return;
    const msg = T.$("#inc-msg");
    msg.textContent = "";
    try {
      const out = await T.api(`/incidents/${f.id}`, {
        method: "PATCH", body: JSON.stringify({ public: !f.properties.public }),
        headers: { "Content-Type": "application/json", "If-Match": `"${f.id}-${f.properties.version}"` },
      });
      if (out && out.type === "Feature") upsert(out);
      msg.textContent = T.t("ops.done");
    } catch (e) {
      msg.textContent = e.status === 412 ? T.t("ops.stale") : e.message;
      if (e.status === 412) {
        const fresh = await T.api(`/incidents/${f.id}`).catch(() => null);
        if (fresh && fresh.type === "Feature") upsert(fresh);
      }
    }
    refresh();
  }
  function assign(event) {
    event.preventDefault();
    const units = T.$("#inc-units").value.split(",").map((u) => u.trim()).filter(Boolean);
    return act(`/incidents/${selected}/assign`, { units }, "ops.done");
  }
  function publish() {
    return act(`/incidents/${selected}/publish`, { expires_hours: 24 }, "ops.published");
  }
  function refresh() {
    renderList(); renderMap();
    if (selected !== null && !byId.has(selected)) select(null);
    else renderDetail();
  }

  // -- data ------------------------------------------------------------------------------------
  async function load() {
    try {
      const [fc, cats] = await Promise.all([
        T.api("/incidents?status=" + OPEN + "&limit=500"),
        T.api("/incidents/categories").catch(() => []),
      ]);
      categories = Object.fromEntries((cats || []).map((c) => [c.code, c]));
      byId.clear();
      for (const f of fc.features) upsert(f);
      T.$("#ops-error").textContent = "";
    } catch (e) {
      T.$("#ops-error").textContent = e.message;
    }
    refresh();
  }
  function onLive(e) {
    const d = e.detail || {};
    if (d.kind === "removed") byId.delete(d.id);
    else if (d.feature) upsert(d.feature);
    else return;
    refresh();
  }

  function setup() {
    T.$("#incident-list").addEventListener("keydown", listKeys);
    T.$("#inc-close").addEventListener("click", () => transition("closed"));
    T.$("#inc-publish").addEventListener("click", publish);
    T.$("#inc-public").addEventListener("click", togglePublic);
    T.$("#inc-assign").addEventListener("submit", assign);
    T.$("#inc-close-panel").addEventListener("click", () => select(null));
    document.addEventListener("twin:incident", onLive);
    document.addEventListener("twin:lang", () => { refresh(); renderHelp(); });
    // a click on an incident drawn on the map selects it
    const prev = V.onMapClick;
    V.onMapClick = function (info, event) {
      if (info && info.layer && info.layer.id === "ops-incidents" && info.object) { select(info.object.id); return true; }
      return prev ? prev(info, event) : false;
    };
    // reconnecting (the list may have missed changes while the stream was down)
    if (T.live && T.live.source) T.live.source.addEventListener("hello", () => { if (loaded) load(); });
    load().then(() => { loaded = true; });
  }
  let loaded = false;
  document.addEventListener("twin:ready", setup, { once: true });
  window.twinOps = { select: (id) => select(id, true), get selected() { return selected; }, get: (id) => byId.get(id), ids: () => sorted().map((f) => f.id), transition, load };
})();
