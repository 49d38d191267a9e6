// On-screen map controls for every map page: zoom in/out, reset north (bearing and tilt
// to 0), reset view (the city), a scale bar, keyboard pan (arrows) and zoom (+/−) while
// the map has focus, and skip links so the keyboard reaches the map (and, in /ops, the
// incident list) in a couple of Tabs.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, el = T.el, cfg = T.config;
  if (!V) return;
  const PAN_PX = 120;          // one arrow press
  const SCALE_MAX_PX = 110;    // the scale bar is at most this long
  const EARTH_M = 40075016.686;
  const mapEl = document.getElementById("deck-container");

  function view() { return V.getViewState() || Object.assign({ width: innerWidth, height: innerHeight }, cfg.home); }
  function zoomBy(dz) {
    const v = view();
    V.jumpTo({ zoom: Math.max(0, Math.min(20, v.zoom + dz)) }, 250);
  }
  function pan(dx, dy) {
    const v = view();
    const vp = new window.deck.WebMercatorViewport(Object.assign({}, v, { bearing: v.bearing || 0, pitch: v.pitch || 0 }));
    const [lon, lat] = vp.unproject([v.width / 2 + dx, v.height / 2 + dy]);
    if (Number.isFinite(lon) && Number.isFinite(lat)) V.jumpTo({ longitude: lon, latitude: lat });
  }
  function resetNorth() { V.jumpTo({ bearing: 0, pitch: 0 }, 300); }
  function resetView() { V.jumpTo(Object.assign({}, cfg.home), 800); }

  // -- scale bar: the longest 1/2/5 × 10^n metres that fits ---------------------------------
  function niceMetres(m) {
    const p = Math.pow(10, Math.floor(Math.log10(m)));
    for (const f of [5, 2, 1]) if (f * p <= m) return f * p;
    return p;
  }
  let scaleKey = "";
  function renderScale() {
    const bar = T.$("#map-scale");
    if (!bar) return;
    const v = view();
    if (!v || !Number.isFinite(v.zoom)) return;
    const mpp = (EARTH_M * Math.cos((v.latitude * Math.PI) / 180)) / (512 * Math.pow(2, v.zoom));
    const m = niceMetres(mpp * SCALE_MAX_PX), px = m / mpp;
    const label = m >= 1000 ? `${(m / 1000).toLocaleString(T.lang === "vi" ? "vi-VN" : "en-GB")} km` : `${m} m`;
    const key = label + "|" + px.toFixed(0);
    if (key === scaleKey) return;
    scaleKey = key;
    bar.querySelector(".map-scale-bar").style.width = px.toFixed(1) + "px";
    bar.querySelector(".map-scale-text").textContent = label;
    bar.dataset.metres = String(m);
    bar.dataset.px = px.toFixed(1);
  }
  function renderCompass() {
    const b = T.$("#map-north");
    if (!b) return;
    const v = view();
    b.querySelector("span").style.transform = `rotate(${-(v.bearing || 0)}deg)`;
  }

  function build() {
    const btn = (id, key, glyph, onclick) => el("button", { type: "button", id, class: "map-btn",
      "data-i18n-label": key, "data-i18n-title": key, "aria-label": T.t(key), title: T.t(key), onclick },
    [el("span", { "aria-hidden": "true", text: glyph })]);
    const group = el("div", { id: "map-controls", class: "map-controls", role: "group", "data-i18n-label": "mapctl.label", "aria-label": T.t("mapctl.label") }, [
      btn("map-zoom-in", "mapctl.zoomIn", "+", () => zoomBy(1)),
      btn("map-zoom-out", "mapctl.zoomOut", "−", () => zoomBy(-1)),
      btn("map-north", "mapctl.north", "↑", resetNorth),
      btn("map-home", "mapctl.home", "⌂", resetView),
    ]);
    const scale = el("div", { id: "map-scale", class: "map-scale", "aria-hidden": "true" }, [
      el("div", { class: "map-scale-bar" }), el("span", { class: "map-scale-text" }),
    ]);
    // right after the map in the page order: Tab from the map reaches them first
    if (mapEl && mapEl.parentNode) {
      mapEl.parentNode.insertBefore(scale, mapEl.nextSibling);
      mapEl.parentNode.insertBefore(group, mapEl.nextSibling);
    } else {
      document.body.append(group, scale);
    }
    // skip links: to the map, and in /ops to the incident list
    const first = T.$("a.skip");
    const links = [el("a", { class: "skip", href: "#deck-container", "data-i18n": "skip.map", text: T.t("skip.map"),
      onclick: (e) => { e.preventDefault(); if (mapEl) mapEl.focus(); } })];
    if (T.$("#incident-list")) {
      links.push(el("a", { class: "skip", href: "#incident-list", id: "skip-incidents", "data-i18n": "skip.incidents", text: T.t("skip.incidents"),
        onclick: (e) => {
          e.preventDefault();
          // on a phone its tab of the sheet first; then focus once the sheet has settled
          const panel = T.$("#ops-panel");
          if (panel && T.panels && T.panels.show && (panel.hidden || PHONE.matches)) T.panels.show(panel);
          setTimeout(() => {
            // the first incident, or (none open) the panel that lists them
            const target = T.$("#incident-list button") || panel;
            if (!target) return;
            if (target === panel && !target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
            target.focus();
          }, 0);
        } }));
    }
    if (first) first.after(...links); else document.body.prepend(...links);
    renderScale();
    renderCompass();
    setTimeout(watchDock, 0);  // after panels.js has built the dock
  }

  // Keys on the focused map: arrows pan, + / = zoom in, − / _ zoom out. Caught before
  // deck.gl's own controller sees them, so one press moves once.
  function onKey(e) {
    if (!mapEl || e.target !== mapEl || e.altKey || e.ctrlKey || e.metaKey) return;
    const step = e.shiftKey ? PAN_PX * 3 : PAN_PX;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) pan(...moves[e.key]);
    else if (e.key === "+" || e.key === "=" || e.key === "Add") zoomBy(1);
    else if (e.key === "-" || e.key === "_" || e.key === "Subtract") zoomBy(-1);
    else return;
    e.preventDefault();
    e.stopPropagation();
  }
  window.addEventListener("keydown", onKey, true);

  // Wide screens: beside the panel columns (their width changes as panels show, hide or
  // fold); phones: twin.css's corners.
  const PHONE = window.matchMedia("(max-width: 760px)");
  function place() {
    const ctl = T.$("#map-controls"), scale = T.$("#map-scale"), legend = T.$("#map-legend");
    const left = T.$(".dock-col.left"), right = T.$(".dock-col.right");
    const used = (col) => col && Array.from(col.children).some((p) => !p.hidden && p.getBoundingClientRect().width > 0);
    const l = !PHONE.matches && used(left) ? left.getBoundingClientRect().right + 10 : null;
    const r = !PHONE.matches && used(right) ? innerWidth - right.getBoundingClientRect().left + 10 : null;
    if (ctl) ctl.style.right = PHONE.matches ? "" : (r === null ? 10 : r) + "px";
    for (const e of [scale, legend]) if (e) e.style.left = PHONE.matches ? "" : (l === null ? 10 : l) + "px";
  }
  T.placeMapControls = place;
  function watchDock() {
    const cols = document.querySelectorAll(".dock-col");
    if (!cols.length) return;
    const ro = new ResizeObserver(place);
    cols.forEach((c) => ro.observe(c));
    const mo = new MutationObserver(place);
    cols.forEach((c) => mo.observe(c, { childList: true, subtree: true, attributes: true, attributeFilter: ["hidden", "class"] }));
    place();
  }
  window.addEventListener("resize", place);
  document.addEventListener("twin:legend", place);

  let frame = 0;
  V.onView = function () {
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = 0; renderScale(); renderCompass(); });
  };
  document.addEventListener("twin:view", () => { renderScale(); renderCompass(); });
  document.addEventListener("twin:lang", () => { scaleKey = ""; renderScale(); });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build);
  else build();
  T.mapctl = { zoomBy, pan, resetNorth, resetView, renderScale };
})();
