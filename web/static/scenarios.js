// Saved scenarios in /plan: the list (name, kind, key figures, author, date; search by
// name, filter by kind, more pages), reopen one (drawn by whatif.js as when it was run),
// rename it inline, delete it after an inline confirmation, copy a link to it, and
// compare two side by side: two maps with one synchronised view (A left, B right; on a
// phone A above B) over the difference table of GET /scenarios/compare. Links:
// /plan?scenario=12 reopens a scenario, /plan?compare=12,15 opens the comparison.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, D = window.deck, el = T.el;
  const PAGE = 10;
  const S = { items: [], total: 0, pick: [], editing: null, confirming: null, open: null, cmp: null, seq: 0 };
  const locale = () => (T.lang === "vi" ? "vi-VN" : "en-GB");
  const num = (n, d) => (n === undefined || n === null ? "—" : Number(n).toLocaleString(locale(), { maximumFractionDigits: d || 0 }));
  const tr = (o) => (o && (o[T.lang] || o.vi || o.en)) || "";
  const status = (msg) => { T.$("#saved-status").textContent = msg || ""; };
  // an unnamed scenario (the what-if panel's) reads as its kind and key parameter
  const nameOf = (sc) => sc.name || (sc.kind ? [tr(sc.kind_label), paramsText(sc)].filter(Boolean).join(", ") + ` #${sc.id}` : T.t("sc.unnamed", { id: sc.id }));
  const when = (iso) => (iso ? new Date(iso).toLocaleString(locale(), { dateStyle: "short", timeStyle: "short" }) : "");
  const linkTo = (q) => `${location.origin}/plan?${q}${location.hash || ""}`;

  // -- list ------------------------------------------------------------------------------
  async function load(more) {
    const mine = ++S.seq;
    const q = T.$("#saved-q").value.trim(), kind = T.$("#saved-kind").value;
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(more ? S.items.length : 0) });
    if (q) params.set("q", q);
    if (kind) params.set("kind", kind);
    try {
      const body = await T.api("/scenarios?" + params);
      if (mine !== S.seq) return;
      S.items = more ? S.items.concat(body.items) : body.items;
      S.total = body.total;
      S.pick = S.pick.filter((id) => S.items.some((i) => i.id === id));
      render();
    } catch (e) { if (mine === S.seq) status(e.message); }
  }
  function paramsText(sc) {
    const p = sc.params || {};
    if (sc.kind === "flood") return p.water_level_m !== null && p.water_level_m !== undefined ? T.t("sc.level", { m: num(p.water_level_m, 2) }) : T.t("sc.rise", { m: num(p.rise_m, 2) });
    if (sc.kind === "rain") return p.rain_mm !== null && p.rain_mm !== undefined ? T.t("sc.rain", { mm: num(p.rain_mm), h: num(p.hours, 1) }) : "";
    if (sc.kind === "river") return T.t("sc.river", { m: num(p.stage_m, 2) });
    if (sc.kind === "closure") return T.t("sc.closed", { n: num((p.segment_ids || []).length || (sc.summary.closed || {}).count) });
    if (sc.kind === "outage") return p.edge_id ? T.t("sc.edge", { id: p.edge_id }) : T.t("sc.node", { id: p.node_id });
    return "";
  }
  function item(sc) {
    const id = sc.id, picked = S.pick.includes(id);
    const nameBox = S.editing === id
      ? el("form", { class: "saved-rename", onsubmit: (e) => { e.preventDefault(); rename(id, e.target.querySelector("input").value); } }, [
        el("label", { class: "sr-only", for: "saved-name-" + id, text: T.t("sc.newName") }),
        el("input", { id: "saved-name-" + id, type: "text", maxlength: "100", value: sc.name || "", required: true,
          onkeydown: (e) => { if (e.key === "Escape") { e.stopPropagation(); S.editing = null; render(); } } }),
        el("button", { type: "submit", text: T.t("sc.save") }),
        el("button", { type: "button", text: T.t("sc.cancel"), onclick: () => { S.editing = null; render(); } }),
      ])
      : el("button", { type: "button", class: "link saved-open", title: T.t("sc.open"), text: nameOf(sc), onclick: () => reopen(id) });
    const actions = S.confirming === id
      ? el("div", { class: "row saved-confirm", role: "group", "aria-label": T.t("sc.confirmDelete", { name: nameOf(sc) }) }, [
        el("span", { text: T.t("sc.confirmDelete", { name: nameOf(sc) }) }),
        el("button", { type: "button", class: "danger saved-yes", text: T.t("sc.yesDelete"), onclick: () => remove(id) }),
        el("button", { type: "button", class: "saved-no", text: T.t("sc.cancel"), onclick: () => { S.confirming = null; render(); } }),
      ])
      : el("div", { class: "row saved-actions" }, [
        el("button", { type: "button", class: "saved-reopen", text: T.t("sc.open"), onclick: () => reopen(id) }),
        el("button", { type: "button", class: "saved-rename-btn", text: T.t("sc.rename"), onclick: () => { S.editing = id; S.confirming = null; render(); focusRename(id); } }),
        el("button", { type: "button", class: "saved-delete", text: T.t("sc.delete"), onclick: () => { S.confirming = id; S.editing = null; render(); } }),
        el("button", { type: "button", class: "saved-link", text: T.t("sc.copyLink"), onclick: () => copy(linkTo("scenario=" + id)) }),
      ]);
    return el("li", { "data-id": String(id), "data-kind": sc.kind, class: S.open === id ? "current" : "" }, [
      el("div", { class: "saved-head" }, [
        // the label is the hit area (44 px on a phone with the checkbox's margin)
        el("label", { class: "saved-pick-hit" }, [
          el("input", { type: "checkbox", class: "saved-pick", id: "saved-pick-" + id, checked: picked,
            "aria-label": T.t("sc.pick", { name: nameOf(sc) }), onchange: (e) => togglePick(id, e.target.checked) }),
        ]),
        nameBox,
      ]),
      el("p", { class: "muted saved-meta", text: [tr(sc.kind_label), paramsText(sc)].filter(Boolean).join(" · ") }),
      el("p", { class: "saved-headline", text: tr(sc.headline) }),
      el("p", { class: "muted saved-by", text: T.t("sc.by", { user: sc.created_by || "—", date: when(sc.created_at) }) }),
      actions,
    ]);
  }
  function render() {
    const list = T.$("#saved-list");
    list.replaceChildren(...S.items.map(item));
    T.$("#saved-empty").hidden = S.items.length > 0;
    T.$("#saved-more").hidden = S.items.length >= S.total;
    const [a, b] = S.pick;
    const btn = T.$("#saved-compare");
    btn.disabled = S.pick.length !== 2;
    T.$("#saved-pick-hint").textContent = S.pick.length === 2
      ? T.t("sc.pickTwoReady", { a: nameOf(byId(a) || { id: a }), b: nameOf(byId(b) || { id: b }) })
      : T.t("sc.pickTwo");
  }
  const byId = (id) => S.items.find((i) => i.id === id);
  function focusRename(id) { const i = T.$("#saved-name-" + id); if (i) { i.focus(); i.select(); } }
  function togglePick(id, on) {
    S.pick = S.pick.filter((x) => x !== id);
    if (on) S.pick.push(id);
    if (S.pick.length > 2) S.pick = S.pick.slice(-2);
    render();
  }

  // -- actions ---------------------------------------------------------------------------
  async function rename(id, name) {
    name = (name || "").trim();
    if (!name) { status(T.t("sc.nameEmpty")); return; }
    try {
      const out = await T.api("/scenarios/" + id, { method: "PATCH", body: JSON.stringify({ name }), headers: { "Content-Type": "application/json" } });
      S.items = S.items.map((i) => (i.id === id ? Object.assign({}, i, { name: out.name }) : i));
      S.editing = null;
      render();
      status(T.t("sc.renamed", { name: out.name }));
      const b = T.$(`#saved-list li[data-id="${id}"] .saved-open`);
      if (b) b.focus();
    } catch (e) { status(e.message); }
  }
  async function remove(id) {
    try {
      await T.api("/scenarios/" + id, { method: "DELETE", raw: true });
      const gone = byId(id);
      S.confirming = null;
      S.pick = S.pick.filter((x) => x !== id);
      if (S.open === id) { S.open = null; window.twinWhatIf.clearAll(); setQuery(null); }
      await load(false);
      status(T.t("sc.deleted", { name: gone ? nameOf(gone) : "#" + id }));
    } catch (e) { S.confirming = null; render(); status(e.message); }
  }
  async function fetchOne(id) {
    return T.api("/scenarios/" + id + "?include=features");
  }
  async function reopen(id) {
    status(T.t("sc.opening"));
    try {
      const sc = await fetchOne(id);
      closeCompare(true);
      window.twinWhatIf.showStored(sc);
      S.open = id;
      setQuery("scenario=" + id);
      render();
      status(T.t("sc.opened", { name: nameOf(sc) }));
      const box = T.$("#whatif");
      if (box) box.open = true;
      // fly to what it drew: the flood's outline, else its features (closure, outage)
      const shape = sc.geometry || (sc.features && {
        coordinates: (sc.features.features || []).map((f) => f.geometry && f.geometry.coordinates).filter(Boolean) });
      if (shape) fitTo(shape);
      return sc;
    } catch (e) { status(e.message); return null; }
  }
  function setQuery(q) {
    history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
  }
  async function copy(url) {
    const box = T.$("#saved-link-box"), input = T.$("#saved-link");
    input.value = url;
    box.hidden = false;
    try {
      await navigator.clipboard.writeText(url);
      status(T.t("sc.copied"));
    } catch (e) {
      input.focus(); input.select();
      status(T.t("sc.copyManual"));
    }
  }
  // bounds of a (Multi)Polygon, for flying to a reopened flood
  function bboxOf(g) {
    let w = 180, s = 90, e = -180, n = -90;
    const walk = (c) => { if (typeof c[0] === "number") { w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]); } else c.forEach(walk); };
    walk(g.coordinates || []);
    return w <= e ? [w, s, e, n] : null;
  }
  function fitTo(g) {
    const cur = V.getViewState();
    const b = bboxOf(g);
    if (!b || !cur) return;
    const [lon, lat] = [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
    const vs = V.getViewState();
    const inView = vs && Math.abs(vs.longitude - lon) < 0.05 && Math.abs(vs.latitude - lat) < 0.05;
    if (!inView && V.flyTo) V.flyTo({ bbox: b });
  }

  // -- compare side by side ----------------------------------------------------------------
  function baseLayers(prefix) {
    const keep = new Set(["basemap", "basemap-archive"]);
    return (V.deck.props.layers || []).filter((l) => l && (keep.has(l.id) || l === V.edge))
      .map((l) => l.clone({ id: prefix + l.id }));
  }
  function paneLayers(side) {
    const c = S.cmp;
    return baseLayers(side + "-").concat(window.twinWhatIf.layersOf(c[side], "cmp-" + side + "-"));
  }
  function syncView(viewState) {
    const c = S.cmp;
    if (!c) return;
    c.view = Object.assign({}, viewState);
    for (const side of ["a", "b"]) c.decks[side].setProps({ viewState: c.view });
  }
  function diffText(row) {
    if (row.diff === null || row.diff === undefined) return "—";
    const d = Math.max(row.digits || 0, row.unit === "km²" ? 3 : 0);
    const sign = row.diff > 0 ? "+" : row.diff < 0 ? "−" : "±";
    return sign + num(Math.abs(row.diff), d);
  }
  function renderTable() {
    const c = S.cmp;
    if (!c) return;
    const cell = (v, row) => num(v, Math.max(row.digits || 0, row.unit === "km²" ? 3 : 0));
    T.$("#cmp-a-name").textContent = "A: " + nameOf(c.a);
    T.$("#cmp-b-name").textContent = "B: " + nameOf(c.b);
    T.$("#cmp-th-a").textContent = "A";
    T.$("#cmp-th-b").textContent = "B";
    T.$("#cmp-title").textContent = T.t("sc.compareTitle", { a: nameOf(c.a), b: nameOf(c.b) });
    T.$("#cmp-table tbody").replaceChildren(...c.table.map((row) => el("tr", { "data-key": row.key,
      class: row.diff > 0 ? "up" : row.diff < 0 ? "down" : "" }, [
      el("th", { scope: "row", text: tr(row.label) + (row.unit ? ` (${row.unit === "người" && T.lang === "en" ? "people" : row.unit})` : "") }),
      el("td", { class: "a", text: cell(row.a, row) }),
      el("td", { class: "b", text: cell(row.b, row) }),
      el("td", { class: "diff", text: diffText(row) }),
    ])));
    const area = c.area;
    T.$("#cmp-area").textContent = area ? T.t("sc.onlyArea", { a: num(area.only_a_km2, 3), b: num(area.only_b_km2, 3) }) : "";
  }
  function compareView() {
    let box = T.$("#compare-view");
    if (box) return box;
    box = el("section", { id: "compare-view", "data-panel": "free", role: "dialog", "aria-modal": "true", "aria-labelledby": "cmp-title", hidden: true }, [
      el("div", { class: "cmp-head" }, [
        el("h2", { id: "cmp-title" }),
        el("button", { type: "button", id: "cmp-link", text: T.t("sc.copyLink"), onclick: () => S.cmp && copyCompare() }),
        el("button", { type: "button", id: "cmp-close", class: "icon", "aria-label": T.t("sc.closeCompare"), text: "×", onclick: () => closeCompare() }),
      ]),
      el("div", { class: "cmp-maps" }, [
        el("div", { class: "cmp-pane", id: "cmp-a" }, [el("p", { class: "cmp-label", id: "cmp-a-name" })]),
        el("div", { class: "cmp-pane", id: "cmp-b" }, [el("p", { class: "cmp-label", id: "cmp-b-name" })]),
      ]),
      el("div", { class: "cmp-table-box" }, [
        el("table", { id: "cmp-table" }, [
          el("caption", { id: "cmp-caption", text: T.t("sc.diffCaption") }),
          el("thead", {}, [el("tr", {}, [el("th", { scope: "col", id: "cmp-th-m", text: T.t("sc.metric") }),
            el("th", { scope: "col", id: "cmp-th-a" }), el("th", { scope: "col", id: "cmp-th-b" }),
            el("th", { scope: "col", id: "cmp-th-d", text: "B − A" })])]),
          el("tbody"),
        ]),
        el("p", { id: "cmp-area", class: "muted" }),
        el("p", { id: "cmp-error", class: "error", role: "alert" }),
      ]),
    ]);
    document.body.appendChild(box);
    box.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.stopPropagation(); closeCompare(); } });
    return box;
  }
  function copyCompare() {
    copy(linkTo(`compare=${S.cmp.a.id},${S.cmp.b.id}`));
    T.$("#cmp-link").textContent = T.t("sc.copied");
  }
  async function openCompare(a, b) {
    status(T.t("sc.comparing"));
    const box = compareView();
    try {
      const [cmp, sa, sb] = await Promise.all([T.api(`/scenarios/compare?a=${a}&b=${b}`), fetchOne(a), fetchOne(b)]);
      closeCompare(true);
      const view = Object.assign({}, V.getViewState() || T.config.home);
      delete view.width; delete view.height;
      S.cmp = { a: sa, b: sb, table: cmp.table, area: cmp.area, view, decks: {} };
      box.hidden = false;
      document.body.classList.add("comparing");  // the main map rests under the comparison
      for (const side of ["a", "b"]) {
        const pane = T.$("#cmp-" + side);
        S.cmp.decks[side] = new D.Deck({ parent: pane, viewState: view, controller: true,
          onViewStateChange: ({ viewState }) => syncView(viewState), layers: paneLayers(side),
          style: { position: "absolute", inset: "0" } });
      }
      renderTable();
      T.$("#cmp-link").textContent = T.t("sc.copyLink");
      setQuery(`compare=${a},${b}`);
      status("");
      T.$("#cmp-close").focus();
      return S.cmp;
    } catch (e) {
      status(e.message);
      return null;
    }
  }
  function closeCompare(quiet) {
    const c = S.cmp;
    if (c) for (const side of ["a", "b"]) if (c.decks[side]) c.decks[side].finalize();
    S.cmp = null;
    document.body.classList.remove("comparing");
    const box = T.$("#compare-view");
    if (box) {
      box.hidden = true;
      box.querySelectorAll(".cmp-pane canvas").forEach((n) => n.remove());
    }
    if (!quiet) { setQuery(S.open ? "scenario=" + S.open : null); const b = T.$("#saved-compare"); if (b) b.focus(); }
  }

  function relabel() {
    const box = T.$("#compare-view");
    if (box) {
      T.$("#cmp-close").setAttribute("aria-label", T.t("sc.closeCompare"));
      T.$("#cmp-link").textContent = T.t("sc.copyLink");
      T.$("#cmp-caption").textContent = T.t("sc.diffCaption");
      T.$("#cmp-th-m").textContent = T.t("sc.metric");
    }
    renderTable();
    render();
  }

  function fromUrl() {
    const q = new URLSearchParams(location.search);
    const cmp = /^(\d{1,18}),(\d{1,18})$/.exec(q.get("compare") || "");
    const one = /^\d{1,18}$/.exec(q.get("scenario") || "");
    // the panel starts folded on a desktop (it would cover the map): a link unfolds it
    if ((cmp || one) && T.panels && !window.matchMedia("(max-width: 760px)").matches) T.panels.collapse(T.$("#saved-panel"), false);
    if (cmp) openCompare(Number(cmp[1]), Number(cmp[2]));
    else if (one) reopen(Number(one[0]));
  }
  function setup() {
    if (!T.$("#saved-panel")) return;
    let timer = null;
    T.$("#saved-q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => load(false), 250); });
    T.$("#saved-kind").addEventListener("change", () => load(false));
    T.$("#saved-more").addEventListener("click", () => load(true));
    T.$("#saved-refresh").addEventListener("click", () => load(false));
    T.$("#saved-compare").addEventListener("click", () => { if (S.pick.length === 2) openCompare(S.pick[0], S.pick[1]); });
    // a scenario the what-if panel stored (whatif.js: twin:scenario) appears in the list
    document.addEventListener("twin:scenario", (e) => { if (e.detail && e.detail.id) { S.open = e.detail.id; load(false); } });
    document.addEventListener("twin:lang", relabel);
    // the compare maps draw the basemap once the catalogue is known
    document.addEventListener("twin:layers", () => {
      if (S.cmp) for (const side of ["a", "b"]) S.cmp.decks[side].setProps({ layers: paneLayers(side) });
    });
    load(false);
    fromUrl();
  }
  document.addEventListener("twin:ready", setup, { once: true });
  window.twinScenarios = { load, reopen, rename, remove, openCompare, closeCompare, state: S };
})();
