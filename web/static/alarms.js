// The alarm panel of the emergency console: active sensor alarms (GET /alarms), most
// severe and newest first, kept current by the `alarm` events of /live. Each alarm can be
// acknowledged, taken ("assign to me") or cleared; choosing one flies the map to its
// sensor and opens the sensor's attributes and chart; an alarm that opened an incident
// selects that incident in the incident list. While the pointer is over the list (or focus
// is in it) the order is frozen — changes show in place, new alarms at the end — and the
// list re-sorts after. An alarm whose sensor lies outside the map's data area
// (V.dataExtent, basemap.js) is listed with a note and does not fly the map away. Messages
// and rule names are shown in the UI language (message_i18n, rule_name_i18n).
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, el = T.el;
  const SEV = { 1: [250, 220, 80], 2: [250, 180, 60], 3: [245, 130, 40], 4: [230, 70, 40], 5: [180, 0, 40] };
  const byId = new Map();
  const units = new Map();  // datastream id → unit symbol ("" while unknown)
  let selected = null, loaded = false;
  let frozen = null;  // alarm ids in their shown order while hovered or focused

  const locale = () => (T.lang === "vi" ? "vi-VN" : "en-GB");
  const me = () => (T.auth.get() || {}).username || "";
  const when = (iso) => T.time(iso);  // Đà Nẵng time with its zone (i18n.js)
  function sorted() {
    if (frozen) {
      const kept = frozen.filter((id) => byId.has(id));
      const extra = Array.from(byId.keys()).filter((id) => !kept.includes(id));
      return kept.concat(extra).map((id) => byId.get(id));
    }
    return Array.from(byId.values()).sort((a, b) => (b.severity - a.severity) ||
      String(b.raised_at).localeCompare(String(a.raised_at)) || b.id - a.id);
  }
  function valueText(a) {
    if (a.value === null || a.value === undefined) return T.t("info.none");
    const unit = units.get(a.datastream_id) || "";
    const v = Number(a.value).toLocaleString(locale(), { maximumFractionDigits: 2,
      signDisplay: a.kind === "rate" ? "always" : "auto" });
    return v + (unit ? " " + unit + (a.kind === "rate" ? "/h" : "") : "");
  }

  const inLang = (i18n, plain) => (i18n && i18n[T.lang]) || plain;
  function outside(a) {
    const g = a.geometry, ext = V.dataExtent;
    if (!g || g.type !== "Point" || !ext) return false;
    const [x, y] = g.coordinates;
    return x < ext[0] || y < ext[1] || x > ext[2] || y > ext[3];
  }

  // -- list ----------------------------------------------------------------------------------
  function details(a) {
    const rule = inLang(a.rule_name_i18n, a.rule_name) || T.t("alarms.kind." + a.kind);
    const n = a.count || a.occurrences || 1;
    return [
      el("span", { class: "when", text: [rule, valueText(a), T.t("ops.severity", { n: a.severity }),
        n > 1 ? T.t("alarms.times", { n }) : null].filter(Boolean).join(" · ") }),
      outside(a) ? el("span", { class: "when alarm-outside", text: T.t("alarms.outside") }) : null,
      el("span", { class: "when", text: [T.t("alarms.since", { t: when(a.raised_at) }),
        a.assignee ? T.t("alarms.assignee", { who: a.assignee }) : T.t("alarms.unassigned")].join(" · ") }),
    ];
  }
  function actions(a) {
    const name = a.thing_name || "#" + a.id;
    const btn = (action, text, onclick, disabled) => el("button", { type: "button", "data-action": action,
      "data-alarm": String(a.id), text, onclick, disabled });
    return el("div", { class: "row alarm-actions", role: "group", "aria-label": T.t("alarms.actionsFor", { name }) }, [
      btn("acknowledge", T.t("alarms.ack"), () => act(a.id, "acknowledge", null, "alarms.acked"), Boolean(a.acknowledged_at)),
      btn("assign", T.t("alarms.assignMe"), () => act(a.id, "assign", { assignee: me() }, "alarms.assigned"), !me() || a.assignee === me()),
      btn("clear", T.t("alarms.clear"), () => act(a.id, "clear", { note: "" }, "alarms.cleared")),
      a.incident_id ? btn("incident", T.t("alarms.incident", { id: a.incident_id }), () => openIncident(a.incident_id)) : null,
    ]);
  }
  function item(a) {
    return el("li", { "data-id": String(a.id), "data-status": a.status, "data-severity": String(a.severity),
      "data-count": String(a.count || a.occurrences || 1), "data-outside": outside(a) ? "true" : "false" }, [
      el("button", { type: "button", class: "alarm", "data-alarm": String(a.id), "data-action": "show",
        "aria-current": selected === a.id ? "true" : "false", title: inLang(a.message_i18n, a.message) || "",
        onclick: () => choose(a.id) }, [
        el("span", { class: "sev", style: "--c:rgb(" + (SEV[a.severity] || SEV[4]).join(",") + ")", "aria-hidden": "true" }),
        el("span", { class: "name", text: a.thing_name || "#" + a.id }),
        el("span", { class: "status-badge", "data-status": a.status, text: T.t("alarms.status." + a.status) }),
        ...details(a),
      ]),
      actions(a),
    ]);
  }
  function render() {
    const ul = T.$("#alarm-list");
    if (!ul) return;
    // keep keyboard focus on the same control across redraws
    const f = document.activeElement, keep = f && ul.contains(f) ? [f.dataset.alarm, f.dataset.action] : null;
    const list = sorted();
    ul.replaceChildren(...list.map(item));
    T.$("#alarm-count").textContent = T.t("alarms.count", { n: list.length });
    if (keep) {
      const again = ul.querySelector(`button[data-alarm="${keep[0]}"][data-action="${keep[1]}"]`) ||
        ul.querySelector(`button[data-alarm="${keep[0]}"][data-action="show"]`);
      if (again && !again.disabled) again.focus();
      else if (again) again.closest("li").querySelector("button.alarm").focus();
    }
  }
  // arrow keys move between alarms, as in the incident list
  function listKeys(e) {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const items = Array.from(T.$("#alarm-list").querySelectorAll("button.alarm"));
    const i = items.indexOf(document.activeElement);
    if (i < 0) return;
    items[(i + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
    e.preventDefault();
  }

  // -- choosing an alarm: the sensor on the map, its attributes and chart ------------------------
  function choose(id) {
    const a = byId.get(id);
    if (!a) return;
    selected = id;
    render();
    const g = a.geometry;
    if (outside(a)) {
      T.$("#alarm-msg").textContent = T.t("alarms.outside");
    } else if (g && g.type === "Point") {
      V.flyTo({ lon: g.coordinates[0], lat: g.coordinates[1], zoom: Math.max(16, (V.getViewState() || {}).zoom || 16) });
    }
    const layer = V.byId.sensors_staff || V.byId.sensors;
    if (layer) {
      document.dispatchEvent(new CustomEvent("twin:pick", { detail: {
        layer, id: a.thing_id, properties: { name: a.thing_name, datastream_id: a.datastream_id } } }));
    }
  }
  function openIncident(id) {
    const ops = window.twinOps;
    if (ops) ops.select(id);
    if (ops && ops.selected === id) {
      const panel = T.$("#incident-panel");
      if (panel && !panel.hidden) panel.focus();
    } else {
      T.$("#alarm-msg").textContent = T.t("alarms.incidentGone", { id });
    }
  }

  // -- actions -------------------------------------------------------------------------------------
  async function act(id, action, body, doneKey) {
    const msg = T.$("#alarm-msg");
    msg.textContent = "";
    try {
      const out = await T.api(`/alarms/${id}/${action}`, { method: "POST",
        body: body ? JSON.stringify(body) : undefined,
        headers: body ? { "Content-Type": "application/json" } : {} });
      upsert(out);
      msg.textContent = T.t(doneKey, { name: out.thing_name || "#" + id });
    } catch (e) {
      msg.textContent = e.message;
    }
    render();
  }

  // -- data -------------------------------------------------------------------------------------
  function upsert(a) {
    if (!a || a.id === undefined) return;
    if (a.status === "cleared") byId.delete(a.id); else byId.set(a.id, a);
    if (!units.has(a.datastream_id)) loadUnit(a.datastream_id);
  }
  async function loadUnit(ds) {
    units.set(ds, "");
    try {
      const d = await T.api(`/sta/v1.1/Datastreams(${ds})?$select=unitOfMeasurement`);
      units.set(ds, ((d && d.unitOfMeasurement) || {}).symbol || "");
      render();
    } catch (e) { /* the value reads without its unit */ }
  }
  async function load() {
    try {
      const body = await T.api("/alarms?status=active&limit=500");
      byId.clear();
      for (const a of body.alarms || []) upsert(a);
      T.$("#alarm-error").textContent = "";
    } catch (e) {
      T.$("#alarm-error").textContent = e.message;
    }
    render();
  }
  function onLive(e) {
    const d = e.detail || {};
    if (!d.alarm) return;
    upsert(d.alarm);
    if (d.action === "raised") T.$("#alarm-msg").textContent = T.t("alarms.new", { name: d.alarm.thing_name || "" });
    render();
  }

  function setup() {
    if (!T.$("#alarm-list")) return;
    const ul = T.$("#alarm-list");
    ul.addEventListener("keydown", listKeys);
    const freeze = () => { if (!frozen) frozen = sorted().map((a) => a.id); };
    const thaw = () => {
      if (ul.matches(":hover") || ul.contains(document.activeElement)) return;
      frozen = null;
      render();
    };
    ul.addEventListener("pointerenter", freeze);
    ul.addEventListener("focusin", freeze);
    ul.addEventListener("pointerleave", () => setTimeout(thaw, 0));
    ul.addEventListener("focusout", () => setTimeout(thaw, 0));
    document.addEventListener("twin:alarm", onLive);
    document.addEventListener("twin:lang", render);
    // after a reconnect the list may have missed changes
    if (T.live && T.live.source) T.live.source.addEventListener("hello", () => { if (loaded) load(); });
    load().then(() => { loaded = true; });
  }
  document.addEventListener("twin:ready", setup, { once: true });
  window.twinAlarms = { ids: () => sorted().map((a) => a.id), choose, load, frozen: () => Boolean(frozen) };
})();
