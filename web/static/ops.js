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
  // the list keeps its order while the pointer is over it or focus is in it
  let frozen = null, draft = null, timeline = [], tlSeq = 0;
  const view = () => T.$("#flt-status").value;  // "open" or "closed,resolved"

  const sevColor = (p) => SEV[p.severity] || [230, 70, 40];
  const locale = () => (T.lang === "vi" ? "vi-VN" : "en-GB");
  const num = (n, d) => Number(n || 0).toLocaleString(locale(), { maximumFractionDigits: d || 0 });
  function catName(code) {
    const c = categories[code];
    return c ? (T.lang === "en" ? c.name_en : c.name_vi) || code : code;
  }
  // a citizen's report is titled by its category (Open311): in the page's language
  function titleOf(f) {
    const p = f.properties, c = categories[p.category];
    if (!p.title || (c && (p.title === c.name_vi || p.title === c.name_en))) {
      return catName(p.category) || "#" + f.id;
    }
    return p.title;
  }
  const when = (iso) => T.time(iso);  // Đà Nẵng time with its zone (i18n.js)
  // the ward as named in the page's language (stored in vi; ward_en from admin_area)
  const wardOf = (p) => (T.lang === "en" && p.ward_en) || p.ward;
  function sorted() {
    const all = Array.from(byId.values()).sort((a, b) =>
      String(b.properties.created_at || "").localeCompare(String(a.properties.created_at || "")) || b.id - a.id);
    if (!frozen) return all;
    // frozen: the order shown when the pointer came in; newcomers go to the end
    const rank = new Map(frozen.map((id, i) => [id, i]));
    return all.sort((a, b) => (rank.has(a.id) ? rank.get(a.id) : 1e9) - (rank.has(b.id) ? rank.get(b.id) : 1e9));
  }
  function freeze(on) {
    if (on && !frozen) frozen = sorted().map((f) => f.id);
    else if (!on && frozen) { frozen = null; renderList(); }
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
          el("span", { class: "when", text: [T.t("ops.severity", { n: p.severity || "?" }), wardOf(p), when(p.created_at)].filter(Boolean).join(" · ") }),
        ]),
      ]);
    }));
    T.$("#ops-count").textContent = T.t(view() === "open" ? "ops.count" : "ops.countClosed", { n: feats.length });
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
      ["ops.f.ward", wardOf(p)], ["ops.f.created", when(p.created_at)], ["ops.f.sla", when(p.sla_due)],
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
    if (!next.includes("closed")) T.$("#inc-confirm").hidden = true;
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
    if (changed) { T.$("#inc-confirm").hidden = true; timeline = []; renderTimeline(); loadTimeline(id); }
    renderDetail(); renderList(); renderMap();
    if (changed) loadHelp(id);
    const g = byId.get(id).geometry;
    if (fly && g && g.type === "Point") V.flyTo({ lon: g.coordinates[0], lat: g.coordinates[1], zoom: Math.max(15, (V.getViewState() || {}).zoom || 15) });
  }

  // -- actions ----------------------------------------------------------------------------
  function inView(f) {
    const st = f.properties.status, v = view();
    if (v === "open" ? st === "closed" : !v.split(",").includes(st)) return false;
    const fc = T.$("#flt-category").value, fs = T.$("#flt-severity").value, fw = T.$("#flt-ward").value.trim();
    if (fc && f.properties.category !== fc) return false;
    if (fs && Number(f.properties.severity) < Number(fs)) return false;
    if (fw && f.properties.ward !== fw) return false;
    return true;
  }
  function upsert(f) {
    if (!f || f.id === undefined) return;
    if (!inView(f)) { byId.delete(f.id); return; }
    byId.set(f.id, f);
  }
  async function act(path, body, doneKey) {
    const msg = T.$("#inc-msg");
    msg.textContent = "";
    try {
      const out = await T.api(path, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
      if (out && out.type === "Feature") { upsert(out); }
      msg.textContent = T.t(doneKey);
      refresh();
      if (selected !== null) loadTimeline(selected);
      return out;
    } catch (e) {
      msg.textContent = e.message;
      return null;
    }
  }
  function transition(status) {
    const id = selected;
    const body = { status };
    if (status === "closed") {
      body.reason = T.$("#inc-reason").value;
      const note = T.$("#inc-close-note").value.trim();
      if (note) body.note = note;
      T.$("#inc-confirm").hidden = true;
      T.$("#inc-close-note").value = "";
    }
    return act(`/incidents/${id}/transition`, body, "ops.done");
  }
  // closing asks first: the reason read back, a note, then confirm or cancel
  function askClose() {
    const f = byId.get(selected);
    if (!f) return;
    const sel = T.$("#inc-reason");
    T.$("#inc-confirm-q").textContent = T.t("ops.confirmQ", { title: titleOf(f), reason: sel.options[sel.selectedIndex].textContent });
    T.$("#inc-confirm").hidden = false;
    T.$("#inc-confirm-yes").focus();
  }

  // -- timeline and comments ----------------------------------------------------------------
  function eventText(e) {
    const d = e.data || {};
    const st = (s) => T.t("ops.status." + s);
    if (e.kind === "transition") {
      const parts = [T.t("ops.ev.transition", { from: st(d.from), to: st(d.to) })];
      if (d.reason) parts.push(T.t("ops.ev.reason", { reason: T.t("ops.reason." + d.reason) }));
      if (d.note) parts.push(d.note);
      return parts.join(" · ");
    }
    if (e.kind === "comment") return T.t("ops.ev.comment") + " (" + T.t(d.public ? "ops.public" : "ops.internal") + "): " + (d.text || "");
    if (e.kind === "assigned") return T.t("ops.ev.assigned", { units: (d.to || []).join(", ") });
    const key = "ops.ev." + e.kind, s = T.t(key);
    return s === key ? e.kind : s;
  }
  function renderTimeline() {
    T.$("#inc-timeline").replaceChildren(...timeline.map((e) => el("li", { "data-kind": e.kind }, [
      el("span", { class: "when muted", text: when(e.at) + " · " + (e.actor || "") }), " ",
      el("span", { class: "what", text: eventText(e) }),
    ])));
  }
  async function loadTimeline(id) {
    const mine = ++tlSeq;
    try {
      const rows = await T.api(`/incidents/${id}/timeline`);
      if (mine !== tlSeq || selected !== id) return;
      timeline = rows || [];
    } catch (e) {
      if (mine !== tlSeq) return;
      timeline = [];
      T.$("#inc-msg").textContent = e.message;
    }
    renderTimeline();
  }
  async function addComment(event) {
    event.preventDefault();
    const box = T.$("#inc-comment-text");
    const out = await act(`/incidents/${selected}/comments`,
      { text: box.value, public: T.$("#inc-comment-public").checked }, "ops.commented");
    if (out) { box.value = ""; T.$("#inc-comment-public").checked = false; }
  }

  // -- new incident: a place from a map click or an address search, then the form ---------
  function renderDraft() {
    if (!draft || !draft.pos) { V.setExtra("ops-draft", null); return; }
    V.setExtra("ops-draft", new D.ScatterplotLayer({
      id: "ops-draft", data: [draft], getPosition: (d) => d.pos, radiusUnits: "pixels", getRadius: 10,
      getFillColor: [255, 255, 255, 200], getLineColor: [20, 20, 20, 255], stroked: true,
      lineWidthUnits: "pixels", getLineWidth: 3,
    }));
    T.$("#inc-new-where").textContent = T.t("ops.new.at", { lat: draft.pos[1].toFixed(5), lon: draft.pos[0].toFixed(5) });
  }
  function fillNewForm() {
    const cat = T.$("#inc-new-category"), prev = cat.value;
    cat.replaceChildren(...Object.values(categories).map((c) => el("option", { value: c.code, text: catName(c.code) })));
    if (prev) cat.value = prev;
    const sev = T.$("#inc-new-severity"), sprev = sev.value;
    sev.replaceChildren(...[1, 2, 3, 4, 5].map((n) => el("option", { value: String(n), text: n + " · " + T.t("sev." + n) })));
    sev.value = sprev || String((categories[cat.value] || {}).severity || 3);
    const fc = T.$("#flt-category"), fprev = fc.value;
    fc.replaceChildren(el("option", { value: "", text: T.t("ops.all") }),
      ...Object.values(categories).map((c) => el("option", { value: c.code, text: catName(c.code) })));
    fc.value = fprev;
    const fs = T.$("#flt-severity"), sp = fs.value;
    fs.replaceChildren(el("option", { value: "", text: T.t("ops.all") }),
      ...[1, 2, 3, 4, 5].map((n) => el("option", { value: String(n), text: "≥ " + n + " · " + T.t("sev." + n) })));
    fs.value = sp;
  }
  function openNew(on) {
    T.$("#inc-new-form").hidden = !on;
    T.$("#inc-new").setAttribute("aria-expanded", on ? "true" : "false");
    draft = on ? { pos: null } : null;
    if (on) { T.$("#inc-new-where").textContent = T.t("ops.new.where"); T.$("#inc-new-address").focus(); }
    renderDraft();
  }
  async function findAddress(event) {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const q = T.$("#inc-new-address").value.trim();
    if (!q || !draft) return;
    try {
      const body = await T.api("/search?q=" + encodeURIComponent(q) + "&limit=1");
      const r = (body.items || [])[0];
      if (!r) { T.$("#inc-new-where").textContent = T.t("search.none", { q }); return; }
      draft.pos = [r.lon, r.lat];
      renderDraft();
      V.flyTo({ lon: r.lon, lat: r.lat, zoom: 16 });
    } catch (e) { T.$("#inc-new-where").textContent = e.message; }
  }
  async function createNew(event) {
    event.preventDefault();
    if (!draft || !draft.pos) { T.$("#inc-new-where").textContent = T.t("ops.new.needPlace"); return; }
    const body = {
      category: T.$("#inc-new-category").value, severity: Number(T.$("#inc-new-severity").value),
      geometry: { type: "Point", coordinates: draft.pos },
    };
    const d = T.$("#inc-new-description").value.trim(), a = T.$("#inc-new-address").value.trim();
    if (d) body.description = d;
    if (a) body.address = a;
    try {
      const out = await T.api("/incidents", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
      upsert(out);
      T.$("#inc-new-description").value = ""; T.$("#inc-new-address").value = "";
      openNew(false);
      T.$("#ops-error").textContent = "";
      refresh();
      select(out.id, false);
      T.$("#inc-msg").textContent = T.t("ops.new.done");
    } catch (e) {
      T.$("#inc-new-where").textContent = e.message;
    }
  }
  function filterQuery() {
    const q = new URLSearchParams({ status: view() === "open" ? OPEN : view(), limit: "500" });
    const c = T.$("#flt-category").value, s = T.$("#flt-severity").value, w = T.$("#flt-ward").value.trim(), h = T.$("#flt-since").value;
    if (c) q.set("category", c);
    if (s) q.set("severity_min", s);
    if (w) q.set("ward", w);
    if (h) q.set("since", new Date(Date.now() - Number(h) * 3600e3).toISOString());
    return q.toString();
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
  // each load is numbered: an answer to an older filter that arrives after a newer one
  // is dropped, and what is shown is narrowed at once, before the server answers
  let loadSeq = 0;
  async function load() {
    const seq = ++loadSeq;
    for (const [id, f] of byId) if (!inView(f)) byId.delete(id);
    if (loaded) refresh();
    try {
      const [fc, cats] = await Promise.all([
        T.api("/incidents?" + filterQuery()),
        T.api("/incidents/categories").catch(() => []),
      ]);
      if (seq !== loadSeq) return;
      if (cats && cats.length) categories = Object.fromEntries(cats.map((c) => [c.code, c]));
      fillNewForm();
      byId.clear();
      for (const f of fc.features) upsert(f);
      T.$("#ops-error").textContent = "";
    } catch (e) {
      if (seq !== loadSeq) return;
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
    if (selected !== null && (d.id === selected || (d.feature && d.feature.id === selected))) loadTimeline(selected);
  }

  function setup() {
    T.$("#incident-list").addEventListener("keydown", listKeys);
    T.$("#inc-close").addEventListener("click", askClose);
    T.$("#inc-confirm-yes").addEventListener("click", () => transition("closed"));
    T.$("#inc-confirm-no").addEventListener("click", () => { T.$("#inc-confirm").hidden = true; T.$("#inc-close").focus(); });
    T.$("#inc-comment").addEventListener("submit", addComment);
    T.$("#inc-new").addEventListener("click", () => openNew(T.$("#inc-new-form").hidden));
    T.$("#inc-new-cancel").addEventListener("click", () => openNew(false));
    T.$("#inc-new-form").addEventListener("submit", createNew);
    T.$("#inc-new-address").addEventListener("keydown", findAddress);
    T.$("#inc-new-category").addEventListener("change", () => {
      const c = categories[T.$("#inc-new-category").value];
      if (c && c.severity) T.$("#inc-new-severity").value = String(c.severity);
    });
    T.$("#inc-filters").addEventListener("change", () => { select(null); load(); });
    T.$("#inc-filters").addEventListener("submit", (e) => { e.preventDefault(); select(null); load(); });
    const list = T.$("#incident-list");
    list.addEventListener("pointerenter", () => freeze(true));
    list.addEventListener("pointerleave", () => { if (!list.contains(document.activeElement)) freeze(false); });
    list.addEventListener("focusin", () => freeze(true));
    list.addEventListener("focusout", (e) => { if (!list.contains(e.relatedTarget) && !list.matches(":hover")) freeze(false); });
    T.$("#inc-publish").addEventListener("click", publish);
    T.$("#inc-public").addEventListener("click", togglePublic);
    T.$("#inc-assign").addEventListener("submit", assign);
    T.$("#inc-close-panel").addEventListener("click", () => select(null));
    document.addEventListener("twin:incident", onLive);
    document.addEventListener("twin:lang", () => { fillNewForm(); refresh(); renderHelp(); renderTimeline(); });
    // a click on an incident drawn on the map selects it
    const prev = V.onMapClick;
    V.onMapClick = function (info, event) {
      if (draft && info && info.coordinate) { draft.pos = [info.coordinate[0], info.coordinate[1]]; renderDraft(); return true; }
      if (info && info.layer && info.layer.id === "ops-incidents" && info.object) { select(info.object.id); return true; }
      return prev ? prev(info, event) : false;
    };
    // reconnecting (the list may have missed changes while the stream was down)
    if (T.live && T.live.source) T.live.source.addEventListener("hello", () => { if (loaded) load(); });
    load().then(() => { loaded = true; });
  }
  let loaded = false;
  document.addEventListener("twin:ready", setup, { once: true });
  window.twinOps = { select: (id) => select(id, true), get selected() { return selected; }, get: (id) => byId.get(id), ids: () => sorted().map((f) => f.id), transition, load,
    get frozen() { return !!frozen; } };
})();
