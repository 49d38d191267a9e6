// A chart of a sensor's recent readings in the attribute panel: clicking a feature of a
// sensor layer fetches its datastream's readings aggregated in the database
// (/sta/v1.1/Datastreams(id)/Observations/aggregate) and draws the average as a line over
// the min–max band, as inline SVG with a text summary and a table. A `sensor` event on
// /live for the open datastream draws it again.
(function () {
  "use strict";
  const T = window.Twin, el = T.el;
  const SENSOR_LAYERS = new Set(["sensors", "sensors_staff"]);
  const WINDOW_MS = 24 * 3600 * 1000;
  const INTERVAL = "15min";
  const FNS = "avg,min,max,count,last";
  const LIVE_DEBOUNCE_MS = 1000;
  // the SVG's own coordinate system (it scales to the panel's width)
  const W = 280, H = 150, M = { left: 44, right: 10, top: 14, bottom: 30 };
  const NS = "http://www.w3.org/2000/svg";
  const INK = "#5b6470", ACCENT = "#0b6e99";

  // what the chart shows: { ds, name, data, recent, error, loading }
  let open = null, seq = 0, liveTimer = null;

  const locale = () => (T.lang === "vi" ? "vi-VN" : "en-GB");
  const num = (v) => Number(v).toLocaleString(locale(), { maximumFractionDigits: 2 });
  // Đà Nẵng times (i18n.js): the axis and the table name the zone once, the summary in full
  const hhmm = (d) => T.time(d, { date: false, zone: false });
  const dayHhmm = (d) => T.time(d, { date: "short", zone: false });
  const day = (d) => T.time(d, { time: false });

  function svg(tag, attrs, children) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const c of children || []) e.appendChild(c);
    return e;
  }

  // -- data -------------------------------------------------------------------------------
  function aggregateUrl(ds, from, to) {
    let url = `/sta/v1.1/Datastreams(${encodeURIComponent(ds)})/Observations/aggregate?interval=${INTERVAL}&fn=${FNS}`;
    if (from) url += "&from=" + encodeURIComponent(from.toISOString()) + "&to=" + encodeURIComponent(to.toISOString());
    return url;
  }
  // The last 24 h; when nothing was read then (old demo or simulated data), the 24 h up
  // to the datastream's newest reading (the endpoint's default window).
  async function fetchReadings(ds) {
    const to = new Date(Date.now() + 60 * 1000);
    const recent = await T.api(aggregateUrl(ds, new Date(to.getTime() - WINDOW_MS), to));
    if (recent.value.length) return { data: recent, recent: true };
    return { data: await T.api(aggregateUrl(ds)), recent: false };
  }
  async function load() {
    if (!open) return;
    const mine = ++seq, ds = open.ds;
    try {
      const got = await fetchReadings(ds);
      if (mine !== seq || !open || open.ds !== ds) return;
      Object.assign(open, got, { error: null, loading: false });
    } catch (e) {
      if (mine !== seq || !open || open.ds !== ds) return;
      Object.assign(open, { error: e.message, loading: false });
    }
    render();
  }

  // -- the numbers the chart and its summary share ------------------------------------------
  function summarise(data) {
    const rows = data.value.filter((r) => r.avg !== null && r.avg !== undefined);
    if (!rows.length) return null;
    const last = rows[rows.length - 1];
    const latest = last.last !== undefined && last.last !== null ? last.last : last.avg;
    return {
      rows,
      unit: ((data.Datastream || {}).unitOfMeasurement || {}).symbol || "",
      min: Math.min(...rows.map((r) => (r.min !== null ? r.min : r.avg))),
      max: Math.max(...rows.map((r) => (r.max !== null ? r.max : r.avg))),
      latest, latestAt: new Date(last.time),
      from: new Date(data.from), to: new Date(data.to),
    };
  }
  function windowText(s, recent) {
    return recent ? T.t("chart.window24h", { step: INTERVAL.replace("min", "") })
      : T.t("chart.windowLast", { end: T.time(s.latestAt, { date: "short" }), step: INTERVAL.replace("min", "") });
  }
  function summaryText(s) {
    const u = s.unit ? " " + s.unit : "";
    return T.t("chart.summary", { last: num(s.latest) + u, time: T.time(s.latestAt, { date: "short" }),
      min: num(s.min) + u, max: num(s.max) + u });
  }

  // -- drawing ------------------------------------------------------------------------------
  // runs of buckets without a long gap, so a silent sensor shows as a break in the line
  function segments(rows, stepMs) {
    const out = [];
    let cur = [];
    for (const r of rows) {
      const t = Date.parse(r.time);
      if (cur.length && t - Date.parse(cur[cur.length - 1].time) > 4 * stepMs) { out.push(cur); cur = []; }
      cur.push(r);
    }
    if (cur.length) out.push(cur);
    return out;
  }
  function scales(s, stepMs) {
    const t0 = s.from.getTime(), t1 = Math.max(s.to.getTime(), t0 + 1);
    let lo = s.min, hi = s.max;
    const pad = hi > lo ? (hi - lo) * 0.08 : Math.max(Math.abs(hi) * 0.05, 0.5);
    lo -= pad; hi += pad;
    const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
    // a bucket is drawn at its middle
    const x = (iso) => M.left + ((Date.parse(iso) + stepMs / 2 - t0) / (t1 - t0)) * pw;
    const y = (v) => M.top + (1 - (v - lo) / (hi - lo)) * ph;
    return { x, y, lo, hi, t0, t1 };
  }
  const pt = (x, y) => x.toFixed(1) + "," + y.toFixed(1);

  // three or four round values between lo and hi (0.5, 1, 1.5 … rather than 1.23, 1.63 …)
  function niceTicks(lo, hi) {
    const raw = (hi - lo) / 3, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((x) => x >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }
  function axes(s, sc) {
    const out = [];
    for (const v of niceTicks(sc.lo, sc.hi)) {
      const y = sc.y(v);
      out.push(svg("line", { x1: M.left, x2: W - M.right, y1: y, y2: y, stroke: "#e3e6ea", "stroke-width": 1 }));
      out.push(svg("text", { x: M.left - 4, y: y + 3, "text-anchor": "end", "font-size": 9.5, fill: INK, text: num(v) }));
    }
    if (s.unit) out.push(svg("text", { x: 4, y: 9, "font-size": 9.5, fill: INK, class: "unit", text: s.unit }));
    const base = H - M.bottom;
    out.push(svg("line", { x1: M.left, x2: W - M.right, y1: base, y2: base, stroke: INK, "stroke-width": 1 }));
    const spansDays = day(new Date(sc.t0)) !== day(new Date(sc.t1));
    [[sc.t0, "start"], [(sc.t0 + sc.t1) / 2, "middle"], [sc.t1, "end"]].forEach(([t, anchor]) => {
      const x = M.left + ((t - sc.t0) / (sc.t1 - sc.t0)) * (W - M.left - M.right);
      const d = new Date(t);
      out.push(svg("line", { x1: x, x2: x, y1: base, y2: base + 3, stroke: INK }));
      out.push(svg("text", { x, y: base + 13, "text-anchor": anchor, "font-size": 9.5, fill: INK,
        text: spansDays && anchor !== "middle" ? dayHhmm(d) : hhmm(d) }));
    });
    return out;
  }
  function chartSvg(s, label, stepMs) {
    const sc = scales(s, stepMs);
    const parts = axes(s, sc);
    for (const seg of segments(s.rows, stepMs)) {
      const hi = seg.map((r) => pt(sc.x(r.time), sc.y(r.max !== null ? r.max : r.avg)));
      const lo = seg.map((r) => pt(sc.x(r.time), sc.y(r.min !== null ? r.min : r.avg))).reverse();
      parts.push(svg("path", { class: "band", d: "M" + hi.concat(lo).join("L") + "Z", fill: ACCENT, "fill-opacity": 0.18, stroke: "none" }));
      parts.push(svg("path", { class: "avg", d: "M" + seg.map((r) => pt(sc.x(r.time), sc.y(r.avg))).join("L"),
        fill: "none", stroke: ACCENT, "stroke-width": 2, "stroke-linejoin": "round", "stroke-linecap": "round" }));
    }
    const last = s.rows[s.rows.length - 1];
    parts.push(svg("circle", { cx: sc.x(last.time), cy: sc.y(s.latest), r: 3, fill: ACCENT, stroke: "#fff", "stroke-width": 1 }));
    return svg("svg", { role: "img", "aria-label": label, viewBox: `0 0 ${W} ${H}`, width: "100%",
      preserveAspectRatio: "xMidYMid meet", class: "sensor-chart-svg" }, parts);
  }
  function table(s) {
    const u = s.unit ? ` (${s.unit})` : "";
    const head = ["chart.time", "chart.avg", "chart.min", "chart.max", "chart.count"]
      .map((k, i) => el("th", { scope: "col",
        text: T.t(k) + (i > 0 && i < 4 ? u : "") + (i === 0 ? ` (${window.TWIN_TIME.label()})` : "") }));
    const rows = s.rows.slice().reverse().map((r) => el("tr", {}, [
      el("th", { scope: "row", text: dayHhmm(new Date(r.time)) }),
      el("td", { text: num(r.avg) }), el("td", { text: r.min !== null ? num(r.min) : "" }),
      el("td", { text: r.max !== null ? num(r.max) : "" }), el("td", { text: String(r.count || "") }),
    ]));
    return el("details", { class: "sensor-chart-table" }, [
      el("summary", { text: T.t("chart.table") }),
      el("table", {}, [el("thead", {}, [el("tr", {}, head)]), el("tbody", {}, rows)]),
    ]);
  }

  // -- the panel section ---------------------------------------------------------------------
  function box() {
    let b = T.$("#sensor-chart");
    if (!b) {
      const panel = T.$("#info-panel");
      if (!panel) return null;
      b = el("section", { id: "sensor-chart", class: "sensor-chart", "aria-labelledby": "sensor-chart-h", hidden: true });
      panel.appendChild(b);
    }
    return b;
  }
  // "thing · datastream", the datastream's name in the page's language once the answer
  // carries it (name_i18n), else as the tile names it
  function shownName() {
    if (!open) return "";
    const d = open.data && open.data.Datastream;
    return [open.thing, d ? T.title(d.name_i18n, d.name) : open.dsName].filter(Boolean).join(" · ");
  }
  function render() {
    const b = box();
    if (!b) return;
    if (!open) { b.hidden = true; b.replaceChildren(); return; }
    const head = el("h3", { id: "sensor-chart-h", text: T.t("chart.title") });
    const who = shownName();
    if (who) head.append(el("span", { class: "sensor-chart-name", text: " · " + who }));
    const s = open.data ? summarise(open.data) : null;
    let body;
    if (open.loading) body = [el("p", { class: "muted", text: T.t("chart.loading") })];
    else if (open.error) body = [el("p", { class: "error", text: T.t("chart.error", { msg: open.error }) })];
    else if (!s) body = [el("p", { class: "muted", text: T.t("chart.empty") })];
    else {
      const name = shownName();
      const label = T.t("chart.aria", { name, window: windowText(s, open.recent) }) + " " + summaryText(s);
      body = [
        el("p", { class: "muted", text: windowText(s, open.recent) }),
        chartSvg(s, label, (open.data.interval_seconds || 900) * 1000),
        el("p", { class: "sensor-chart-summary", text: summaryText(s) }),
        table(s),
      ];
    }
    b.replaceChildren(head, ...body);
    b.dataset.datastream = String(open.ds);
    b.hidden = false;
  }

  function show(f) {
    const ds = f && SENSOR_LAYERS.has(f.layer.id) ? Number(f.properties.datastream_id) : NaN;
    if (!Number.isFinite(ds) || ds <= 0) { close(); return; }
    const p = f.properties;
    open = { ds, thing: p.name || "", dsName: p.datastream_name || "", loading: true };
    render();
    load();
  }
  function close() {
    if (!open) return;
    open = null; seq++;
    render();
  }
  // The chart follows the attribute panel: it closes with it, goes when the panel shows a
  // feature without a datastream (a search result), and follows the datastream the panel
  // settles on (the features API names the thing's primary one).
  function followPanel() {
    const panel = T.$("#info-panel");
    if (!panel || !open) return;
    const dd = panel.querySelector('[data-prop="datastream_id"] dd');
    const shown = dd ? Number(dd.textContent.replace(/\D/g, "")) : 0;
    if (panel.hidden || !shown) close();
    else if (shown !== open.ds) {
      open = { ds: shown, thing: open.thing, dsName: "", loading: true };
      render();
      load();
    }
  }

  // -- live ----------------------------------------------------------------------------------
  function onSensor(e) {
    if (!open) return;
    let d = null;
    try { d = JSON.parse(e.data); } catch (ex) { return; }
    const hit = (d.observations || []).some((o) => Number(o.datastream) === open.ds) ||
      (d.things || []).some((t) => Number(t.datastream) === open.ds);
    if (!hit || liveTimer) return;
    // readings come in batches: one refresh per second at most
    liveTimer = setTimeout(() => { liveTimer = null; load(); }, LIVE_DEBOUNCE_MS);
  }
  let listening = null;
  function listen() {
    const src = T.live && T.live.source;
    if (!src || src === listening) return;
    src.addEventListener("sensor", onSensor);
    listening = src;
  }

  document.addEventListener("twin:pick", (e) => show(e.detail));
  document.addEventListener("twin:lang", () => { if (open) render(); });
  // live.js opens the stream on these same events; its listeners were added first
  document.addEventListener("DOMContentLoaded", () => {
    listen();
    const panel = T.$("#info-panel");
    if (panel) {
      const body = T.$("#info-body");
      new MutationObserver(followPanel).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
      if (body) new MutationObserver(followPanel).observe(body, { childList: true });
    }
  });
  document.addEventListener("twin:ready", listen);

  T.sensorChart = { show, close, get open() { return open && open.ds; } };
})();
