// Layout of the panels around the map, shared by every page (/, /plan, /ops, /track, /signin).
//
// How to use it from a template: give the element class="panel" (or a data-panel
// attribute) and a head — its first <h1>/<h2>, or a <div class="panel-head"> holding the
// heading and, say, a close button:
//
//   <section id="my-panel" class="panel" data-dock="right" aria-labelledby="my-h">
//     <div class="panel-head"><h2 id="my-h">…</h2><button class="icon">×</button></div>
//     …content…
//   </section>
//
// At start-up the panel gets a collapse button in its head (aria-expanded, aria-controls)
// and the rest of its content is wrapped in <div class="panel-body">. On wide screens the
// panels are stacked in two columns beside the map (data-dock="left" | "right"; class
// "left" means left, the default is right), so they never overlap: a column shares its
// height among its panels and each scrolls on its own. On phones (≤ 760 px wide) the
// panels become the tabs of one bottom sheet (#sheet): a tab per panel that is not
// hidden, and a handle that collapses or opens the sheet (aria-expanded); the map keeps
// the rest of the screen. Showing a hidden panel (`panel.hidden = false`) selects its tab
// and opens the sheet; `Twin.panels.show(panel)` does it from code, `Twin.panels.collapse(
// panel, true)` folds one. Attributes: data-panel-collapsed (starts folded on wide
// screens), data-panel="free" (left where its own CSS puts it, e.g. a modal dialog),
// data-panel-title="…" (the tab's text when the head has none). A control floating at
// the foot of the map (data-float, e.g. the citizen's report button) sits above the sheet. The page header's menu
// button (header.html) folds page links, language and account on phones the same way.
(function () {
  "use strict";
  const T = window.Twin;
  const PHONE = window.matchMedia("(max-width: 760px)");
  let dock = null, tabs = null, handle = null, active = null, open = false, seq = 0;

  function headOf(panel) {
    const first = panel.firstElementChild;
    if (first && first.classList.contains("panel-head")) return first;
    if (first && /^H[1-3]$/.test(first.tagName)) {
      const head = T.el("div", { class: "panel-head" });
      panel.insertBefore(head, first);
      head.appendChild(first);
      return head;
    }
    return null;
  }
  function titleOf(panel) {
    const h = panel.querySelector(".panel-head h1, .panel-head h2, .panel-head h3");
    return (h && h.textContent.trim()) || panel.dataset.panelTitle || panel.getAttribute("aria-label") || "";
  }
  function toggleText(btn, folded) {
    btn.setAttribute("aria-label", T.t(folded ? "panel.expand" : "panel.collapse"));
    btn.title = btn.getAttribute("aria-label");
  }
  function collapse(panel, folded) {
    const btn = panel.querySelector(":scope > .panel-head > .panel-toggle");
    panel.classList.toggle("collapsed", folded);
    if (btn) { btn.setAttribute("aria-expanded", String(!folded)); toggleText(btn, folded); }
  }
  function adopt(panel) {
    if (panel.dataset.panelReady || panel.dataset.panel === "free") return;
    panel.dataset.panelReady = "1";
    if (!panel.id) panel.id = "panel-" + ++seq;
    const head = headOf(panel);
    const body = T.el("div", { class: "panel-body", id: panel.id + "-body" });
    for (const n of Array.from(panel.childNodes)) if (n !== head) body.appendChild(n);
    panel.appendChild(body);
    if (head) {
      const btn = T.el("button", { type: "button", class: "icon panel-toggle", "aria-controls": body.id,
        "aria-expanded": "true", onclick: () => collapse(panel, !panel.classList.contains("collapsed")) });
      btn.appendChild(T.el("span", { "aria-hidden": "true", text: "⌃" }));
      const close = head.querySelector("button.icon");
      head.insertBefore(btn, close || null);
      toggleText(btn, false);
    }
    const side = panel.dataset.dock || (panel.classList.contains("left") ? "left" : "right");
    dock.querySelector(".dock-col." + side).appendChild(panel);
    collapse(panel, panel.hasAttribute("data-panel-collapsed"));
    new MutationObserver(() => {
      if (!panel.hidden) { collapse(panel, false); select(panel, true); }
      renderTabs();
    }).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  }
  function panels() { return dock ? Array.from(dock.querySelectorAll(".dock-col > .panel, .dock-col > [data-panel]")) : []; }
  function shown() { return panels().filter((p) => !p.hidden); }

  function setOpen(v) {
    open = v;
    document.body.classList.toggle("sheet-open", open);
    handle.setAttribute("aria-expanded", String(open));
    handle.setAttribute("aria-label", T.t(open ? "sheet.close" : "sheet.open"));
    handle.title = handle.getAttribute("aria-label");
  }
  function select(panel, openIt) {
    active = panel;
    for (const p of panels()) p.classList.toggle("active", p === panel);
    if (openIt) setOpen(true);
    renderTabs();
  }
  function renderTabs() {
    if (!tabs) return;
    const list = shown();
    if (!list.includes(active)) active = list[0] || null;
    for (const p of panels()) p.classList.toggle("active", p === active);
    tabs.replaceChildren(...list.map((p) => T.el("button", {
      type: "button", role: "tab", class: "sheet-tab", id: "tab-" + p.id, "aria-controls": p.id,
      "aria-selected": String(p === active), text: titleOf(p),
      onclick: () => { if (p === active && open) setOpen(false); else select(p, true); },
    })));
    dock.classList.toggle("empty", list.length === 0);
  }

  function build() {
    dock = T.el("div", { id: "dock", class: "dock" }, [
      T.el("div", { class: "sheet-bar" }, [
        handle = T.el("button", { type: "button", class: "sheet-handle", "aria-expanded": "false",
          onclick: () => setOpen(!open) }, [T.el("span", { "aria-hidden": "true" })]),
        tabs = T.el("div", { class: "sheet-tabs", role: "tablist", "aria-label": T.t("sheet.label") }),
      ]),
      T.el("div", { class: "dock-col left" }),
      T.el("div", { class: "dock-col right" }),
    ]);
    document.body.appendChild(dock);
    // --sheet-h: how much of the screen's foot the phone's sheet takes, for controls that
    // float above it (data-float; bottom: calc(var(--sheet-h) + 12px))
    new ResizeObserver(() => {
      const h = PHONE.matches && !dock.classList.contains("empty") ? dock.offsetHeight : 0;
      document.documentElement.style.setProperty("--sheet-h", h + "px");
    }).observe(dock);
    document.querySelectorAll(".panel, [data-panel]").forEach(adopt);
    setOpen(false);
    renderTabs();
    // panels added later (a script building its own) join the same way
    new MutationObserver((recs) => {
      for (const r of recs) for (const n of r.addedNodes) {
        if (n.nodeType === 1 && (n.classList.contains("panel") || n.hasAttribute("data-panel"))) { adopt(n); renderTabs(); }
      }
    }).observe(document.body, { childList: true });
  }

  // -- the top bar's menu on phones ---------------------------------------------------
  function menu() {
    const btn = T.$("#menu-toggle"), box = T.$("#topbar-menu");
    if (!btn || !box) return;
    const set = (v) => {
      btn.setAttribute("aria-expanded", String(v));
      document.body.classList.toggle("menu-open", v);
    };
    btn.addEventListener("click", () => set(btn.getAttribute("aria-expanded") !== "true"));
    document.addEventListener("keydown", (e) => { if (e.key === "Escape") set(false); });
    box.addEventListener("click", (e) => { if (e.target.closest("a, button")) set(false); });
    document.addEventListener("pointerdown", (e) => { if (!e.target.closest(".topbar")) set(false); });
    PHONE.addEventListener("change", () => set(false));
  }

  T.panels = {
    show(panel) { panel.hidden = false; collapse(panel, false); select(panel, true); },
    collapse,
    setOpen: (v) => setOpen(v),
    isPhone: () => PHONE.matches,
  };
  document.addEventListener("DOMContentLoaded", () => { build(); menu(); });
  document.addEventListener("twin:lang", () => {
    if (tabs) tabs.setAttribute("aria-label", T.t("sheet.label"));
    renderTabs();
    if (handle) setOpen(open);
    document.querySelectorAll(".panel-toggle").forEach((b) => toggleText(b, b.getAttribute("aria-expanded") === "false"));
  });
})();

// Panels: layers (toggle + legend), attributes of the picked feature, search, the
// staff gate of /plan and /ops.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, S = T.style, D = window.deck, el = T.el;
  if (!V) return;  // a page without a map (sign-in): the layout above is all it needs

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
      // a day stays a day; a moment reads in Đà Nẵng's time with its zone
      return prop.type === "date" ? s.slice(0, 10) : T.time(s);
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
