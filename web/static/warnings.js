// Public warnings (CAP alerts) on every page: a banner under the top bar with the most
// severe alert (severity colour, headline, area), the full list on demand, and their area
// polygons on the map. Refetched from /warnings.json when /live says `event: warning`.
(function () {
  "use strict";
  const T = window.Twin, el = T.el;
  const RANK = { Extreme: 4, Severe: 3, Moderate: 2, Minor: 1, Unknown: 0 };
  const COLOR = { Extreme: [122, 0, 16], Severe: [209, 36, 26], Moderate: [230, 126, 0],
    Minor: [224, 180, 0], Unknown: [107, 114, 128] };
  const W = (T.warnings = { features: [], open: false, loaded: false });

  function banner() {
    let b = T.$("#warning-banner");
    if (!b) {
      b = el("ul", { id: "warning-banner", role: "region", "aria-live": "polite", hidden: true });
      const top = T.$(".topbar");
      (top && top.parentNode ? top.parentNode : document.body).insertBefore(b, top ? top.nextSibling : null);
    }
    return b;
  }
  function place(b) {
    const top = T.$(".topbar");
    if (top) b.style.top = Math.round(top.getBoundingClientRect().bottom + 6) + "px";
  }
  function when(iso) { return T.incidents ? T.incidents.when(iso) : iso || ""; }
  function item(f) {
    const p = f.properties || {}, sev = RANK[p.severity] !== undefined ? p.severity : "Unknown";
    return el("li", { class: "warning", "data-severity": sev, "data-id": p.id }, [
      el("span", { class: "sev-word", text: T.t("warn.sev." + sev) }),
      el("span", { class: "headline", text: p.headline || p.event || "" }),
      p.area_desc ? el("span", { class: "area", text: T.t("warn.area", { area: p.area_desc }) }) : null,
      p.instruction && W.open ? el("span", { class: "instruction", text: p.instruction }) : null,
      p.expires ? el("span", { class: "until", text: T.t("warn.until", { t: when(p.expires) }) }) : null,
    ]);
  }
  function render() {
    const b = banner();
    const feats = W.features.slice().sort((a, c) =>
      (RANK[c.properties.severity] || 0) - (RANK[a.properties.severity] || 0));
    b.replaceChildren();
    b.setAttribute("aria-label", T.t("warn.title"));
    b.hidden = feats.length === 0;
    place(b);
    for (const f of W.open ? feats : feats.slice(0, 1)) b.appendChild(item(f));
    if (feats.length > 1 || (feats.length && feats[0].properties.instruction)) {
      b.appendChild(el("li", {}, [el("button", { type: "button", id: "warning-toggle",
        "aria-expanded": String(W.open),
        text: W.open ? T.t("warn.less") : T.t("warn.more", { n: feats.length }),
        onclick: () => { W.open = !W.open; render(); } })]));
    }
    drawAreas(feats);
  }
  function drawAreas(feats) {
    const V = T.viewer, D = window.deck;
    if (!V || !D) return;
    if (!feats.length) { V.setExtra("warnings", null); return; }
    const colour = (f) => COLOR[f.properties.severity] || COLOR.Unknown;
    V.setExtra("warnings", new D.GeoJsonLayer({
      id: "warnings", data: { type: "FeatureCollection", features: feats }, pickable: false,
      filled: true, stroked: true, getFillColor: (f) => colour(f).concat([45]),
      getLineColor: (f) => colour(f).concat([230]), lineWidthUnits: "pixels", getLineWidth: 2.5,
      parameters: { depthWriteEnabled: false },
    }));
  }
  let seq = 0;
  async function load(fresh) {
    const mine = ++seq;
    if (!(T.config.api || {}).warnings) { W.loaded = true; return; }  // no warnings list here
    try {
      // after a live `event: warning` the browser's cached copy (max-age 15 s) is stale
      const body = await T.api("/warnings.json?lang=" + T.lang,
        { headers: { Accept: "application/geo+json, application/json" },
          cache: fresh === true ? "no-cache" : "default" });
      if (mine !== seq) return;
      W.features = (body && Array.isArray(body.features) ? body.features : [])
        .filter((f) => f && f.properties);
    } catch (e) {
      // no warnings service (yet) or a failed fetch: the page goes on without a banner
      if (mine !== seq) return;
      W.features = [];
    }
    W.loaded = true;
    render();
    document.dispatchEvent(new CustomEvent("twin:warnings"));
  }
  W.reload = load;
  let timer = null;
  function soon() { clearTimeout(timer); timer = setTimeout(() => load(true), 150); }
  document.addEventListener("DOMContentLoaded", load);
  document.addEventListener("twin:warning", soon);
  document.addEventListener("twin:lang", load);
  window.addEventListener("resize", () => { const b = T.$("#warning-banner"); if (b) place(b); });
})();
