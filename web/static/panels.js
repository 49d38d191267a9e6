// Panels: layers (toggle + legend), attributes of the picked feature, search, the
// staff gate of /plan and /ops.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, S = T.style, D = window.deck, el = T.el;

  // -- layer panel --------------------------------------------------------------------
  let drawnKey = null;
  function renderLayers() {
    const list = T.$("#layer-list");
    if (!list) return;
    const zoom = (V.getViewState() || {}).zoom || 0;
    const key = [V.layers.map((l) => l.id).join(","), T.lang, Math.floor(zoom)].join("|");
    if (key === drawnKey) {
      // same layers: only sync the boxes, so keyboard focus stays where it is
      for (const layer of V.layers) {
        const box = T.$("#lyr-" + layer.id);
        if (box) box.checked = V.enabled.has(layer.id);
      }
      return;
    }
    drawnKey = key;
    const focused = document.activeElement && document.activeElement.id;
    list.replaceChildren();
    for (const layer of V.layers) {
      const id = "lyr-" + layer.id;
      const box = el("input", { type: "checkbox", id, checked: V.enabled.has(layer.id),
        "aria-describedby": id + "-legend",
        onchange: (e) => V.setEnabled(layer.id, e.target.checked) });
      const badge = layer.access !== "public"
        ? el("span", { class: "badge", text: T.t("layers." + layer.access) }) : null;
      const from = V.drawFrom(layer);
      const hint = zoom < from
        ? el("span", { class: "zoom-hint", text: T.t("layers.fromZoom", { z: from }) }) : null;
      const legend = el("ul", { class: "legend", id: id + "-legend", "aria-label": T.t("layers.legend") },
        S.legend(layer).map((r) => el("li", {}, [
          el("span", { class: "swatch " + r.kind, style: "--c:" + S.css(r.color)
            + (r.icon ? `;background-image:url(${r.icon})` : ""), "aria-hidden": "true" }),
          r.label,
        ])));
      list.appendChild(el("li", { class: "layer-item", "data-layer": layer.id }, [
        el("div", { class: "layer-row" }, [box, el("label", { for: id, text: T.title(layer.title) }), badge]),
        hint, legend,
      ]));
    }
    if (focused && focused.startsWith("lyr-") && T.$("#" + focused)) T.$("#" + focused).focus();
  }
  document.addEventListener("twin:layers", renderLayers);
  document.addEventListener("twin:lang", renderLayers);
  document.addEventListener("twin:view", renderLayers);  // zoom hints per zoom band

  // -- attribute panel ------------------------------------------------------------------
  let current = null;
  function fmt(prop, v) {
    if (v === undefined || v === null || v === "") return T.t("info.none");
    const locale = T.lang === "vi" ? "vi-VN" : "en-GB";
    if (prop.type === "boolean") return v === true || v === "true" || v === 1 ? T.t("yes") : T.t("no");
    if (prop.name === "severity" && T.incidents) return `${T.incidents.severityWord(v)} (${v})`;
    if (prop.type === "integer" || prop.type === "number") {
      const n = Number(v);
      return Number.isFinite(n) ? n.toLocaleString(locale, { maximumFractionDigits: 2 }) : String(v);
    }
    if (prop.type === "date" || prop.type === "datetime") {
      const s = typeof v === "number" ? new Date(v > 1e11 ? v : v * 86400000).toISOString() : String(v);
      return prop.type === "date" ? s.slice(0, 10) : s.replace("T", " ").slice(0, 19);
    }
    // coded values (kind, level, use, class…) read in the chosen language, code kept for CQL2
    const named = T.t("class." + v);
    return named !== "class." + v && named !== String(v) ? `${named} (${v})` : String(v);
  }
  function renderInfo() {
    const panel = T.$("#info-panel");
    if (!panel) return;
    if (!current) { panel.hidden = true; return; }
    const { layer, properties, id } = current;
    T.$("#info-layer").textContent = T.title(layer.title) + (T.other(layer.title) ? " · " + T.other(layer.title) : "");
    const dl = T.$("#info-body");
    dl.replaceChildren();
    for (const prop of layer.properties || []) {
      const title = prop.title || { vi: prop.name, en: prop.name };
      dl.appendChild(el("div", { class: "kv", "data-prop": prop.name }, [
        el("dt", {}, [el("span", { lang: T.lang, text: T.title(title) }),
          el("span", { class: "alt", lang: T.lang === "vi" ? "en" : "vi", text: T.other(title) })]),
        el("dd", { text: fmt(prop, properties[prop.name]) }),
      ]));
    }
    if (id !== undefined && id !== null) {
      dl.appendChild(el("div", { class: "kv muted" }, [el("dt", { text: T.t("info.id") }), el("dd", { text: String(id) })]));
    }
    panel.hidden = false;
  }
  function highlight(feature, layer) {
    if (!feature) { V.setExtra("selection", null); return; }
    const ext = layer.id === "buildings" && V.extrude;
    V.setExtra("selection", new D.GeoJsonLayer({
      id: "selection", data: feature, pickable: false,
      stroked: true, filled: true, extruded: ext,
      getElevation: (f) => (Number(f.properties.height_m) || 6) + 0.5,
      getFillColor: ext ? [255, 140, 30, 230] : [255, 140, 30, 70], getLineColor: [230, 90, 0, 255],
      lineWidthUnits: "pixels", getLineWidth: 3, pointRadiusUnits: "pixels", getPointRadius: 9,
    }));
  }
  // Show a feature; complete its attributes from the features API (tiles may omit nulls).
  async function show(f) {
    current = f;
    renderInfo();
    if (!f) { highlight(null); return; }
    if (f.id === undefined || f.id === null) return;
    try {
      const feat = await T.api(`/collections/${encodeURIComponent(f.layer.id)}/items/${encodeURIComponent(f.id)}`,
        { headers: { Accept: "application/geo+json, application/json" } });
      if (current !== f || !feat || !feat.properties) return;
      current = Object.assign({}, f, { properties: Object.assign({}, f.properties, feat.properties) });
      renderInfo();
      highlight(feat, f.layer);
    } catch (e) { /* keep what the tile said */ }
  }
  // a sensor's new reading updates its open attribute panel in place
  function onSensor(e) {
    if (!current || !/^sensors/.test(current.layer.id)) return;
    const t = ((e.detail || {}).things || []).find((x) => String(x.id) === String(current.id));
    if (!t) return;
    current = Object.assign({}, current, { properties: Object.assign({}, current.properties,
      { state: t.state, last_value: t.value, unit: t.unit, last_time: t.time }) });
    renderInfo();
  }
  T.showFeature = show;
  document.addEventListener("twin:pick", (e) => show(e.detail));
  document.addEventListener("twin:sensor", onSensor);
  document.addEventListener("twin:lang", renderInfo);
  document.addEventListener("DOMContentLoaded", () => {
    const close = T.$("#info-close");
    if (close) close.addEventListener("click", () => show(null));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && current && !V.mode) show(null);
    });
  });

  // -- search -----------------------------------------------------------------------------
  let results = [], active = -1, timer = null, seq = 0;
  function resultName(r) { return (T.lang === "en" && r.name_en) || r.name_vi || r.name_en || ""; }
  function kindText(r) {
    const k = T.t("class." + r.kind);
    const layer = V.byId[r.layer];
    return (k.startsWith("class.") ? r.kind || "" : k) + (layer ? " · " + T.title(layer.title) : "");
  }
  function renderResults() {
    const ul = T.$("#search-results"), input = T.$("#search-input");
    ul.replaceChildren();
    results.forEach((r, i) => {
      ul.appendChild(el("li", { role: "option", id: "sr-" + i, "aria-selected": String(i === active),
        class: i === active ? "active" : "",
        onmousedown: (e) => { e.preventDefault(); choose(i); } }, [
        el("span", { class: "name", text: resultName(r) }),
        el("span", { class: "kind", text: kindText(r) }),
      ]));
    });
    ul.hidden = results.length === 0;
    input.setAttribute("aria-expanded", String(results.length > 0));
    if (active >= 0) input.setAttribute("aria-activedescendant", "sr-" + active);
    else input.removeAttribute("aria-activedescendant");
  }
  async function runSearch(q) {
    const note = T.$("#search-note"), mine = ++seq;
    if (q.trim().length < 2) { results = []; active = -1; renderResults(); note.textContent = ""; return; }
    try {
      const body = await T.api("/search?q=" + encodeURIComponent(q) + "&limit=10");
      if (mine !== seq) return;
      results = body.items || body.results || [];
      active = results.length ? 0 : -1;
      note.textContent = results.length ? T.t("search.count", { n: results.length }) : T.t("search.none", { q });
    } catch (e) {
      results = []; active = -1;
      note.textContent = T.t("search.error", { msg: e.message });
    }
    renderResults();
  }
  function choose(i) {
    const r = results[i];
    if (!r) return;
    const input = T.$("#search-input");
    input.value = resultName(r);
    results = []; active = -1;
    renderResults();
    T.$("#search-note").textContent = "→ " + resultName(r);
    V.flyTo({ lon: r.lon, lat: r.lat, bbox: r.bbox, zoom: r.layer === "admin_boundaries" ? 14 : 17 });
    const layer = V.byId[r.layer];
    if (layer) show({ layer, properties: Object.assign({}, r.properties || {}, { name_vi: r.name_vi, name_en: r.name_en }), id: r.id });
  }
  T.searchChoose = choose;
  document.addEventListener("DOMContentLoaded", () => {
    const input = T.$("#search-input");
    if (!input) return;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => runSearch(input.value), 220);
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown" && results.length) { active = (active + 1) % results.length; renderResults(); e.preventDefault(); }
      else if (e.key === "ArrowUp" && results.length) { active = (active - 1 + results.length) % results.length; renderResults(); e.preventDefault(); }
      else if (e.key === "Enter") {
        e.preventDefault();
        if (active >= 0) choose(active);
        else { clearTimeout(timer); runSearch(input.value); }
      } else if (e.key === "Escape") { results = []; active = -1; renderResults(); }
    });
    input.addEventListener("blur", () => setTimeout(() => { results = []; active = -1; renderResults(); }, 150));
  });
  document.addEventListener("twin:lang", () => { if (results.length) renderResults(); });

  // -- the signed-in role's catalogue; the staff gate of /plan and /ops ----------------------
  function gate(msgKey, vars) {
    const g = T.$("#gate");
    if (!g) return;
    T.$("#gate-msg").textContent = T.t(msgKey, vars);
    T.$("#gate-signin").setAttribute("href", "/signin?next=" + encodeURIComponent(location.pathname + location.hash));
    g.hidden = false;
  }
  async function refreshCatalogue() {
    const cfg = T.config;
    const auth = T.auth.get();
    if (cfg.staffOnly && !auth) {
      location.replace("/signin?next=" + encodeURIComponent(location.pathname + location.hash) + (T.auth.expired ? "&expired=1" : ""));
      return;
    }
    if (!auth) return;
    try {
      const body = await T.api("/viewer/layers");
      V.setLayers(body.layers);
      if (cfg.staffOnly && !T.auth.isStaff()) gate("auth.staffOnly", { role: T.t("role." + T.auth.role()) });
      else document.dispatchEvent(new CustomEvent("twin:ready"));
    } catch (e) {
      V.setLayers(T.config.layers || []);  // the public map, whatever went wrong
      if (e.status === 401) {
        T.renderAccount();
        if (cfg.staffOnly) gate("auth.expired");
      } else T.status(e.message, "error");
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    renderLayers();
    const map = document.getElementById("deck-container");
    if (map) { map.setAttribute("tabindex", "0"); map.setAttribute("role", "application"); map.setAttribute("aria-label", T.t("title.map")); }
    refreshCatalogue();
  });
})();
