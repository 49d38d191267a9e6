// Report a problem from the public map (Open311, FixMyStreet-like): the spot (tap the
// map, the device's position or an address), the category and its questions, a
// description, up to 3 photos, optional contact details; open reports of the same kind
// within 50 m are offered first ("is it one of these?"). "My reports" (token, category,
// date) stay in this browser's localStorage.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, el = T.el, D = window.deck;
  const KEY = "twin.reports";
  const MAX_PHOTOS = 3, MAX_BYTES = 5 * 1024 * 1024;
  const TYPES = ["image/jpeg", "image/png", "image/webp"];
  const api = () => T.config.api || {};
  const R = (T.report = { open: false, spot: null, photos: [], services: null, defs: {}, dupes: [] });

  // -- my reports ---------------------------------------------------------------------
  R.mine = function () {
    try {
      const a = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(a) ? a.filter((e) => e && (e.token || e.id)) : [];
    } catch (e) { return []; }
  };
  R.remember = function (entry) {
    const same = (e) => (entry.token ? e.token === entry.token : !e.token && e.id === entry.id);
    const list = [entry].concat(R.mine().filter((e) => !same(e))).slice(0, 50);
    try { localStorage.setItem(KEY, JSON.stringify(list)); } catch (e) { /* storage full or off */ }
    renderMine();
  };
  function day(iso) {
    const s = T.incidents ? T.incidents.when(iso) : iso;
    return s.replace(/^\d\d:\d\d /, "").replace(" (GMT+7)", "");
  }
  function renderMine() {
    const list = R.mine(), ul = T.$("#myreports-list"), n = T.$("#myreports-count");
    if (n) n.textContent = list.length ? `(${list.length})` : "";
    if (!ul) return;
    ul.replaceChildren();
    if (!list.length) ul.appendChild(el("li", { class: "muted", text: T.t("report.mineNone") }));
    for (const e of list) {
      const name = T.incidents ? T.incidents.categoryName(e.category) : e.category;
      const label = [el("span", { text: (e.id ? "#" + e.id + " · " : "") + name }),
        el("span", { class: "when", text: day(e.date) + (e.token ? "" : " · " + T.t("report.supported")) })];
      ul.appendChild(el("li", { "data-token": e.token || null, "data-id": e.id || null }, [
        T.incidents ? el("img", { src: T.incidents.badgeUrl(e.category, 3), alt: "" }) : null,
        e.token ? el("a", { href: "/track/" + encodeURIComponent(e.token) }, label)
          : el("button", { type: "button", onclick: () => goTo(e.id) }, label),
      ]));
    }
  }
  function toggleMine(show) {
    const p = T.$("#myreports-panel");
    p.hidden = !show;
    T.$("#myreports-open").setAttribute("aria-expanded", String(show));
    if (show) { renderMine(); if (R.open) close(); }
  }

  // -- the sheet --------------------------------------------------------------------------
  function setOpen(on) {
    R.open = on;
    const p = T.$("#report-panel");
    p.hidden = !on;
    document.body.classList.toggle("reporting", on);
    T.$("#report-open").setAttribute("aria-expanded", String(on));
    if (on) {
      T.$("#myreports-panel").hidden = true;
      loadServices();
      p.focus();
    } else {
      V.setExtra("report-spot", null);
    }
    V.cursor = on ? "crosshair" : null;
  }
  function close() { setOpen(false); }
  R.openSheet = () => setOpen(true);

  function say(msg) { T.$("#report-error").textContent = msg || ""; }
  // "Cháy / Fire" → the half in the current language
  function pick(text) {
    const parts = String(text || "").split(" / ");
    return parts.length === 2 ? parts[T.lang === "vi" ? 0 : 1] : String(text || "");
  }

  async function loadServices() {
    if (R.services) return;
    try {
      R.services = await T.api("/open311/v2/services.json");
    } catch (e) { say(T.t("report.failed", { msg: e.message })); return; }
    renderServices();
  }
  function renderServices() {
    const sel = T.$("#report-category");
    if (!sel || !R.services) return;
    const keep = sel.value;
    sel.replaceChildren(el("option", { value: "", text: T.t("report.choose") }));
    for (const s of R.services) {
      sel.appendChild(el("option", { value: s.service_code, text: pick(s.service_name) }));
    }
    sel.value = keep;
  }
  async function onCategory() {
    const code = T.$("#report-category").value;
    const box = T.$("#report-attrs");
    box.replaceChildren();
    refreshDupes();
    const svc = (R.services || []).find((s) => s.service_code === code);
    if (!svc || !svc.metadata) return;
    try {
      if (!R.defs[code]) R.defs[code] = await T.api(`/open311/v2/services/${encodeURIComponent(code)}.json`);
    } catch (e) { say(T.t("report.failed", { msg: e.message })); return; }
    if (T.$("#report-category").value !== code) return;
    renderAttrs(code);
  }
  function renderAttrs(code) {
    const box = T.$("#report-attrs");
    box.replaceChildren();
    const attrs = ((R.defs[code] || {}).attributes || []).filter((a) => a.variable !== false)
      .sort((a, b) => (a.order || 0) - (b.order || 0));
    for (const a of attrs) {
      const id = "report-attr-" + a.code;
      const text = pick(a.description) + (a.required ? " " + T.t("report.required") : "");
      let input;
      if (a.datatype === "singlevaluelist" || a.datatype === "multivaluelist") {
        input = el("select", { id, name: `attribute[${a.code}]`, required: Boolean(a.required),
          multiple: a.datatype === "multivaluelist" }, [el("option", { value: "", text: T.t("report.choose") })]
          .concat((a.values || []).map((v) => el("option", { value: v.key, text: pick(v.name) }))));
      } else {
        input = el("input", { id, name: `attribute[${a.code}]`, required: Boolean(a.required),
          type: a.datatype === "number" ? "number" : "text", min: a.datatype === "number" ? "0" : null });
      }
      box.appendChild(el("label", { for: id, text }));
      box.appendChild(input);
    }
  }

  // -- the spot -----------------------------------------------------------------------------
  function setSpot(lon, lat, name) {
    R.spot = { lon: Number(lon), lat: Number(lat), name: name || null };
    const w = T.$("#report-where");
    w.dataset.set = "true";
    w.removeAttribute("data-i18n");
    w.textContent = name ? T.t("report.atName", { name })
      : T.t("report.at", { lat: R.spot.lat.toFixed(5), lon: R.spot.lon.toFixed(5) });
    V.setExtra("report-spot", new D.ScatterplotLayer({
      id: "report-spot", data: [R.spot], getPosition: (d) => [d.lon, d.lat], pickable: false,
      radiusUnits: "pixels", getRadius: 11, getFillColor: [179, 38, 30, 230], stroked: true,
      getLineColor: [255, 255, 255, 255], lineWidthUnits: "pixels", getLineWidth: 3,
      billboard: true, parameters: { depthCompare: "always", depthWriteEnabled: false },
    }));
    say("");
    refreshDupes();
  }
  R.setSpot = setSpot;
  // a tap on the map while the sheet is open chooses the spot
  const prevClick = V.onMapClick;
  V.onMapClick = function (info, event) {
    if (R.open && info && info.coordinate) {
      setSpot(info.coordinate[0], info.coordinate[1]);
      return true;
    }
    return prevClick ? prevClick(info, event) : false;
  };
  function locate() {
    if (!navigator.geolocation) { say(T.t("report.noGeo", { msg: "—" })); return; }
    const w = T.$("#report-where");
    w.textContent = T.t("report.locating");
    navigator.geolocation.getCurrentPosition((pos) => {
      setSpot(pos.coords.longitude, pos.coords.latitude);
      V.flyTo({ lon: pos.coords.longitude, lat: pos.coords.latitude, zoom: 17 });
    }, (err) => {
      w.textContent = R.spot ? w.textContent : T.t("report.noSpot");
      say(T.t("report.noGeo", { msg: err.message || err.code }));
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  }
  let addrTimer = null, addrSeq = 0;
  async function findAddress(q) {
    const ul = T.$("#report-address-results"), mine = ++addrSeq;
    if (q.trim().length < 2) { ul.replaceChildren(); return; }
    let items = [];
    try {
      const body = await T.api("/search?q=" + encodeURIComponent(q) + "&limit=5");
      items = body.items || body.results || [];
    } catch (e) { say(T.t("search.error", { msg: e.message })); }
    if (mine !== addrSeq) return;
    ul.replaceChildren();
    if (!items.length) ul.appendChild(el("li", { class: "muted", text: T.t("search.none", { q }) }));
    for (const r of items) {
      const name = (T.lang === "en" && r.name_en) || r.name_vi || r.name_en || "";
      ul.appendChild(el("li", {}, [el("button", { type: "button", text: name, onclick: () => {
        ul.replaceChildren();
        T.$("#report-address").value = name;
        setSpot(r.lon, r.lat, name);
        V.flyTo({ lon: r.lon, lat: r.lat, zoom: 17 });
      } })]));
    }
  }

  // -- "is it one of these?" ------------------------------------------------------------------
  let dupeSeq = 0;
  async function refreshDupes() {
    const box = T.$("#report-dupes"), code = T.$("#report-category").value, mine = ++dupeSeq;
    if (!api().nearby || !R.spot || !code) { box.hidden = true; R.dupes = []; return; }
    let rows = [];
    try {
      rows = await T.api(`/open311/v2/requests/nearby.json?service_code=${encodeURIComponent(code)}`
        + `&lat=${R.spot.lat}&long=${R.spot.lon}&radius=50`);
    } catch (e) { rows = []; }
    if (mine !== dupeSeq) return;
    R.dupes = Array.isArray(rows) ? rows : [];
    renderDupes();
  }
  function renderDupes() {
    const box = T.$("#report-dupes"), ul = T.$("#report-dupes-list");
    ul.replaceChildren();
    box.hidden = R.dupes.length === 0;
    for (const d of R.dupes) {
      ul.appendChild(el("li", { "data-id": d.service_request_id }, [
        el("span", { text: T.t("report.dupeItem", { id: d.service_request_id,
          status: T.t("status." + d.status), m: Math.round(Number(d.distance_m) || 0), n: d.supporters || 0 }) }),
        d.description ? el("span", { class: "muted", text: d.description }) : null,
        api().support ? el("button", { type: "button", class: "metoo", text: T.t("report.metoo"),
          onclick: () => support(d) }) : null,
      ]));
    }
  }
  async function support(d) {
    say("");
    let body;
    try {
      body = await T.api(`/open311/v2/requests/${encodeURIComponent(d.service_request_id)}/support.json`,
        { method: "POST" });
    } catch (e) { say(T.t("report.failed", { msg: e.message })); return; }
    R.remember({ id: String(d.service_request_id), category: d.service_code, date: new Date().toISOString() });
    T.status(T.t("report.metooDone", { n: body.supporters, id: d.service_request_id }), "info", 8000);
    close();
    goTo(d.service_request_id, d);
  }
  // show a public report on the map with its attributes
  function goTo(id, known) {
    toggleMine(false);
    const show = (lon, lat) => {
      V.flyTo({ lon, lat, zoom: 17 });
      if (V.byId.incidents && T.showFeature) T.showFeature({ layer: V.byId.incidents, properties: {}, id });
    };
    if (known && known.long !== undefined) { show(Number(known.long), Number(known.lat)); return; }
    T.api(`/open311/v2/requests/${encodeURIComponent(id)}.json`)
      .then((rows) => { if (rows && rows[0]) show(Number(rows[0].long), Number(rows[0].lat)); })
      .catch((e) => T.status(e.message, "error", 6000));
  }

  // -- photos -------------------------------------------------------------------------------
  function onPhotos(e) {
    const input = e.target;
    say("");
    for (const f of Array.from(input.files || [])) {
      if (R.photos.length >= MAX_PHOTOS) { say(T.t("report.tooMany")); break; }
      if (!TYPES.includes(f.type)) { say(T.t("report.badType", { name: f.name })); continue; }
      if (f.size > MAX_BYTES) { say(T.t("report.tooBig", { name: f.name })); continue; }
      R.photos.push({ file: f, url: URL.createObjectURL(f) });
    }
    input.value = "";
    renderPhotos();
  }
  function renderPhotos() {
    const box = T.$("#report-photos-preview");
    box.replaceChildren();
    R.photos.forEach((p, i) => {
      box.appendChild(el("figure", {}, [
        el("img", { src: p.url, alt: p.file.name }),
        el("button", { type: "button", class: "icon", "aria-label": T.t("report.photoRemove", { n: i + 1 }), text: "×",
          onclick: () => { URL.revokeObjectURL(p.url); R.photos.splice(i, 1); renderPhotos(); } }),
      ]));
    });
    T.$("#report-photos").disabled = R.photos.length >= MAX_PHOTOS;
  }

  // -- send -----------------------------------------------------------------------------------
  async function send(e) {
    e.preventDefault();
    const code = T.$("#report-category").value;
    if (!R.spot) { say(T.t("report.needSpot")); return; }
    if (!code) { say(T.t("report.needCategory")); T.$("#report-category").focus(); return; }
    const fields = [["service_code", code], ["lat", String(R.spot.lat)], ["long", String(R.spot.lon)]];
    if (R.spot.name) fields.push(["address_string", R.spot.name]);
    const text = T.$("#report-description").value.trim();
    if (text) fields.push(["description", text]);
    for (const input of T.$("#report-attrs").querySelectorAll("[name]")) {
      if (input.required && !input.value) {
        say(T.t("report.required") + ": " + (T.$(`label[for="${input.id}"]`) || {}).textContent);
        input.focus();
        return;
      }
      if (input.value) fields.push([input.name, input.value]);
    }
    const name = T.$("#report-name").value.trim();
    if (name) fields.push(["first_name", name]);
    for (const [k, id] of [["email", "#report-email"], ["phone", "#report-phone"]]) {
      const v = T.$(id).value.trim();
      if (v) fields.push([k, v]);
    }
    let body;
    if (R.photos.length && api().media) {
      body = new FormData();
      for (const [k, v] of fields) body.append(k, v);
      for (const p of R.photos) body.append("media", p.file, p.file.name);
    } else {
      body = new URLSearchParams(fields);
    }
    const btn = T.$("#report-send");
    btn.disabled = true;
    btn.textContent = T.t("report.sending");
    say("");
    try {
      const res = await fetch("/open311/v2/requests.json", { method: "POST", body,
        headers: { Accept: "application/json", "Accept-Language": T.lang } });
      let out = null;
      try { out = await res.json(); } catch (ex) { out = null; }
      if (!res.ok) {
        const msg = Array.isArray(out) && out[0] && out[0].description ? out[0].description
          : res.status + " " + res.statusText;
        throw new Error(msg);
      }
      const made = Array.isArray(out) ? out[0] : out;
      R.remember({ token: made.token, id: made.service_request_id || null, category: code,
        date: new Date().toISOString() });
      location.assign("/track/" + encodeURIComponent(made.token));
    } catch (ex) {
      say(T.t("report.failed", { msg: ex.message }));
    } finally {
      btn.disabled = false;
      btn.textContent = T.t("report.send");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!T.$("#report-panel")) return;
    T.$("#report-open").addEventListener("click", () => setOpen(!R.open));
    T.$("#report-close").addEventListener("click", close);
    T.$("#myreports-open").addEventListener("click", () => toggleMine(T.$("#myreports-panel").hidden));
    T.$("#myreports-close").addEventListener("click", () => toggleMine(false));
    T.$("#report-locate").addEventListener("click", locate);
    T.$("#report-category").addEventListener("change", onCategory);
    T.$("#report-photos").addEventListener("change", onPhotos);
    T.$("#report-form").addEventListener("submit", send);
    const addr = T.$("#report-address");
    addr.addEventListener("input", () => { clearTimeout(addrTimer); addrTimer = setTimeout(() => findAddress(addr.value), 250); });
    addr.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); clearTimeout(addrTimer); findAddress(addr.value); }
    });
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && R.open) close(); });
    if (!api().media) {
      // this server takes no photos: no input that would silently drop them
      for (const n of [T.$("#report-photos"), T.$('label[for="report-photos"]')]) if (n) n.hidden = true;
    }
    renderMine();
    if (location.pathname === "/report") setOpen(true);
  });
  document.addEventListener("twin:lang", () => {
    renderServices();
    const code = T.$("#report-category") && T.$("#report-category").value;
    if (code && R.defs[code]) renderAttrs(code);
    if (R.spot) setSpot(R.spot.lon, R.spot.lat, R.spot.name);
    renderMine();
    renderDupes();
  });

  window.twinReport = { spot: () => R.spot, mine: R.mine, dupes: () => R.dupes };
})();
