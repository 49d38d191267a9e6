// Map labels: place names, main road names and facility names from the loaded tiles,
// drawn in one text layer above everything (so no tile paints over another tile's
// label), with overlapping labels dropped, most important first.
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, S = T.style, D = window.deck;

  const VI = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ";
  let ascii = "";
  for (let i = 32; i < 127; i++) ascii += String.fromCharCode(i);
  // One fixed character set (Vietnamese included): one font atlas, built once.
  const CHARSET = ascii + VI + VI.toUpperCase() + "–—·’‘“”…²°";
  const MAIN_ROADS = { motorway: 0, trunk: 1, primary: 2, secondary: 3 };

  // tile-local [0..1] coordinates (y down) → lon/lat degrees
  function lngLat(tile, c) {
    if (Math.abs(c[0]) > 1.5 || Math.abs(c[1]) > 1.5) return [c[0], c[1]];
    const { x, y, z } = tile.index, n = Math.pow(2, z);
    const lat = Math.atan(Math.sinh(Math.PI * (1 - (2 * (y + c[1])) / n))) * 180 / Math.PI;
    return [((x + c[0]) / n) * 360 - 180, lat];
  }
  function name(layer, p) {
    const key = S.label(layer) || (p.name_vi !== undefined ? "name_vi" : "name");
    let s = p[key];
    if (T.lang === "en") s = p.name_en || p[key.replace(/_vi$/, "_en")] || s;
    return s ? String(s).normalize("NFC") : "";
  }
  // the longest piece of each named road in the tile: main roads from z14, every named
  // street from z15, its name written along the street's curve (see along())
  function roadLabels(tile, feats, out) {
    const best = new Map(), all = tile.index.z >= 15;
    for (const f of feats) {
      const p = f.properties;
      if (!(all || p.road_class in MAIN_ROADS) || f.geometry.type !== "LineString") continue;
      const text = T.lang === "en" ? p.name_en || p.name : p.name;
      if (!text) continue;
      const c = f.geometry.coordinates;
      let len = 0;
      for (let i = 1; i < c.length; i++) len += Math.hypot(c[i][0] - c[i - 1][0], c[i][1] - c[i - 1][1]);
      const cur = best.get(text);
      if (!cur || len > cur.len) best.set(text, { len, c, f, text });
    }
    for (const { c, f, text } of best.values()) {
      const line = c.map((q) => lngLat(tile, q));
      const rank = f.properties.road_class in MAIN_ROADS ? MAIN_ROADS[f.properties.road_class] : 6;
      out.push({ pos: midpoint(line), line, text: text.normalize("NFC"),
        size: rank < 6 ? 12 : 11, prio: 10 + rank, color: [90, 70, 50, 255], street: true,
        properties: f.properties, id: f.id });
    }
  }
  // the point halfway along a line (lon/lat; near enough for placing a label)
  function midpoint(line) {
    let total = 0;
    const seg = [];
    for (let i = 1; i < line.length; i++) { const d = Math.hypot(line[i][0] - line[i - 1][0], line[i][1] - line[i - 1][1]); seg.push(d); total += d; }
    let left = total / 2;
    for (let i = 0; i < seg.length; i++) {
      if (left <= seg[i] && seg[i] > 0) {
        const t = left / seg[i];
        return [line[i][0] + t * (line[i + 1][0] - line[i][0]), line[i][1] + t * (line[i + 1][1] - line[i][1])];
      }
      left -= seg[i];
    }
    return line[0];
  }

  // -- a name along a curve ----------------------------------------------------------------
  // Glyph widths from the browser's own font metrics (the atlas is drawn in the same font).
  const ctx2d = document.createElement("canvas").getContext("2d");
  const widths = new Map();
  function advances(text, size) {
    const key = size + "|" + text;
    let w = widths.get(key);
    if (!w) {
      ctx2d.font = size + "px sans-serif";
      w = Array.from(text).map((ch) => ctx2d.measureText(ch).width);
      widths.set(key, w);
    }
    return w;
  }
  // a point and direction at distance d along a screen polyline (pts, cumulative cum)
  function at(pts, cum, d) {
    let i = 1;
    while (i < pts.length - 1 && cum[i] < d) i++;
    const a = pts[i - 1], b = pts[i], len = cum[i] - cum[i - 1] || 1, t = (d - cum[i - 1]) / len;
    return [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
  }
  const MAX_TURN = 35;  // degrees between neighbouring letters: sharper bends are not labelled
  // The letters of a street's name placed one by one along the street as it is drawn on
  // screen, centred on its middle and reading left to right; null where the street is too
  // short on screen or bends too sharply for its name.
  function along(vp, c) {
    let pts = c.line.map((q) => vp.project(q));
    const w = advances(c.text, c.size), width = w.reduce((a, b) => a + b, 0);
    const cumOf = (p) => p.reduce((acc, q, i) => { acc.push(i ? acc[i - 1] + Math.hypot(q[0] - p[i - 1][0], q[1] - p[i - 1][1]) : 0); return acc; }, []);
    let cum = cumOf(pts);
    const total = cum[cum.length - 1];
    if (total < width * 1.1 + 8) return null;
    const s0 = (total - width) / 2;
    if (at(pts, cum, s0 + width)[0] < at(pts, cum, s0)[0]) { pts = pts.slice().reverse(); cum = cumOf(pts); }
    const glyphs = [];
    let d = s0, prev = null, sx = 0, sy = 0;
    const chars = Array.from(c.text);
    for (let i = 0; i < chars.length; i++) {
      const mid = d + w[i] / 2;
      const p = at(pts, cum, mid - Math.max(w[i], 4) / 2), q = at(pts, cum, mid + Math.max(w[i], 4) / 2);
      const xy = at(pts, cum, mid);
      let angle = (Math.atan2(-(q[1] - p[1]), q[0] - p[0]) * 180) / Math.PI;
      if (prev !== null) {
        const turn = Math.abs(((angle - prev + 540) % 360) - 180);
        if (turn > MAX_TURN) return null;
      }
      prev = angle;
      sx += Math.cos((angle * Math.PI) / 180); sy += Math.sin((angle * Math.PI) / 180);
      d += w[i];
      if (chars[i] === " ") continue;
      const h = c.size / 2 + 2;
      glyphs.push({ ch: chars[i], pos: vp.unproject(xy), angle, size: c.size, color: c.color,
        properties: c.properties, id: c.id, box: [xy[0] - h, xy[1] - h, xy[0] + h, xy[1] + h] });
    }
    let angle = (Math.atan2(sy, sx) * 180) / Math.PI;
    if (angle > 90) angle -= 180;
    if (angle < -90) angle += 180;
    return { glyphs, angle };
  }

  // Administrative names follow the date the map shows (V.date; the planner's time
  // control moves it): today's wards and communes, and the districts abolished on
  // 2025-07-01 only for a date before that. The periods come from the admin_boundaries
  // features in the tile (valid_from / valid_to per level), else that date.
  const ADMIN_KINDS = { district: "district", ward: "ward", commune: "commune" };
  const REFORM = "2025-07-01";
  function day(v) {
    if (v === undefined || v === null || v === "") return null;
    if (typeof v === "number") return new Date(v > 1e11 ? v : v * 86400000).toISOString().slice(0, 10);
    return String(v).slice(0, 10);
  }
  function adminPeriods(feats) {
    const out = {};
    for (const f of feats || []) {
      const p = f.properties, lv = p.level;
      if (!(lv in ADMIN_KINDS)) continue;
      const from = day(p.valid_from), to = day(p.valid_to), cur = out[lv] || (out[lv] = { from: null, to: null, open: false });
      if (from && (!cur.from || from < cur.from)) cur.from = from;
      if (!to) cur.open = true; else if (!cur.to || to > cur.to) cur.to = to;
    }
    return out;
  }
  function inForce(kind, periods) {
    const lv = ADMIN_KINDS[kind];
    if (!lv) return true;
    const d = V.date, per = periods[lv];
    const from = per ? per.from : lv === "district" ? null : REFORM;
    const to = per ? (per.open ? null : per.to) : lv === "district" ? REFORM : null;
    return (!from || from <= d) && (!to || d < to);
  }
  const tileCache = new WeakMap();
  function tileLabels(tile, key) {
    const hit = tileCache.get(tile.content);
    if (hit && hit.key === key) return hit.labels;
    const out = [], z = tile.index.z;
    const groups = {};
    for (const f of tile.content) (groups[f.properties.layerName] || (groups[f.properties.layerName] = [])).push(f);
    const periods = adminPeriods(groups.admin_boundaries);
    for (const layer of V.layers) {
      const feats = groups[layer.id];
      if (!feats || !V.enabled.has(layer.id)) continue;
      if (layer.id === "roads" && z >= 14) roadLabels(tile, feats, out);
      if (S.kind(layer) !== "point") continue;
      const labelled = Boolean(S.label(layer));
      if (!labelled && z < 15) continue;
      for (const f of feats) {
        const text = name(layer, f.properties);
        if (!text || f.geometry.type !== "Point" || !inForce(f.properties.kind, periods)) continue;
        const rank = Number(f.properties.rank) || 3;
        out.push({ pos: lngLat(tile, f.geometry.coordinates), text, properties: f.properties, id: f.id,
          size: labelled ? Math.max(12, 20 - 2.5 * rank) : 11, prio: labelled ? rank : 20,
          minZoom: labelled ? rank + 10 : 15, offset: labelled ? [0, 0] : [0, -14],
          color: labelled ? [35, 35, 45, 255] : [80, 80, 90, 255] });
      }
    }
    tileCache.set(tile.content, { key, labels: out });
    return out;
  }

  // Greedy placement: keep a label when its box overlaps none kept before it.
  function place(cands) {
    const vp = V.deck.viewManager && V.deck.getViewports()[0];
    if (!vp) return [];
    cands.sort((a, b) => a.prio - b.prio || b.size - a.size);
    const kept = [], boxes = [], seen = new Set();
    for (const c of cands) {
      if (c.minZoom && vp.zoom < c.minZoom - 0.5) continue;
      const [x, y] = vp.project(c.pos);
      if (x < -50 || y < -20 || x > vp.width + 50 || y > vp.height + 20) continue;
      const dup = c.text + "|" + Math.round(x / 150) + "|" + Math.round(y / 150);
      if (seen.has(dup)) continue;
      const overlaps = (box) => boxes.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1]);
      if (c.street && c.line) {
        const g = along(vp, c);
        if (!g || g.glyphs.some((l) => overlaps(l.box))) continue;
        for (const l of g.glyphs) boxes.push(l.box);
        seen.add(dup);
        kept.push(Object.assign({}, c, { angle: g.angle, glyphs: g.glyphs }));
        continue;
      }
      const bw = c.text.length * c.size * 0.58 + 6, bh = c.size + 6;
      const cx = x + (c.offset ? c.offset[0] : 0), cy = y + (c.offset ? c.offset[1] : 0);
      const box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2];
      if (overlaps(box)) continue;
      boxes.push(box);
      seen.add(dup);
      kept.push(Object.assign({}, c, { angle: 0 }));
    }
    return kept;
  }

  let timer = null;
  V.updateLabels = function () {
    clearTimeout(timer);
    V.labelsPending = true;
    timer = setTimeout(() => {
      V.labelsPending = false;
      const key = [Array.from(V.enabled).join(","), T.lang, V.date].join("|");
      const cands = [];
      for (const t of V.selectedTiles()) if (Array.isArray(t.content)) cands.push(...tileLabels(t, key));
      const placed = place(cands);
      V.placedLabels = placed;  // test and console hook: every label kept, streets with their letters
      const common = {
        getPosition: (d) => d.pos, getSize: (d) => d.size, getAngle: (d) => d.angle,
        getColor: (d) => d.color, getPixelOffset: (d) => d.offset || [0, 0],
        sizeUnits: "pixels", fontFamily: "sans-serif", characterSet: CHARSET,
        fontSettings: { sdf: true, fontSize: 40, buffer: 6, radius: 10 },
        outlineWidth: 3, outlineColor: [255, 255, 255, 230],
        getTextAnchor: "middle", getAlignmentBaseline: "center", billboard: true, pickable: true,
        parameters: { depthCompare: "always", depthWriteEnabled: false },
      };
      V.extras.set("labels", [
        new D.TextLayer(Object.assign({ id: "labels", data: placed.filter((d) => !d.glyphs), getText: (d) => d.text }, common)),
        // street names, a letter at a time along their streets
        new D.TextLayer(Object.assign({ id: "labels-streets", data: placed.flatMap((d) => d.glyphs || []), getText: (d) => d.ch }, common)),
      ]);
      V.render({ labels: false });
    }, 120);
  };
  document.addEventListener("twin:view", V.updateLabels);
  document.addEventListener("twin:lang", V.updateLabels);
})();
