// Incident symbols: a white pictogram per category (twin/incidents/categories.py) on a
// disc coloured by severity, with the severity told in words (vi/en). Drawn on a canvas
// here (no icon files, no fonts with emoji) and above 3D buildings.
(function () {
  "use strict";
  const T = window.Twin;
  const SIZE = 48;
  // the categories of twin/incidents/categories.py, in its order
  const CATEGORIES = ["fire", "flood", "traffic_accident", "road_blocked", "pothole", "water_main_burst",
    "power_outage", "streetlight", "fallen_tree", "landslide", "medical", "pollution", "waste",
    "drainage_blocked"];
  const SEVERITY = {
    1: [250, 220, 80, 255], 2: [250, 180, 60, 255], 3: [245, 130, 40, 255],
    4: [230, 70, 40, 255], 5: [180, 0, 40, 255],
  };

  // Pictograms on a 24 × 24 grid, white: SVG path data (filled) and strokes.
  const FILL = {
    fire: "M12 2C14 7 19 9 17.5 15.5C16.6 19.6 14 22 12 22C8.4 22 6 19.2 6 15.5C6 12 8.5 10 9 6.5C10.8 8.5 11 10.5 11.5 12C13 9 12.5 5.5 12 2Z",
    water_main_burst: "M12 3C12 3 5 11 5 15A7 7 0 0 0 19 15C19 11 12 3 12 3Z",
    power_outage: "M13.5 2L5 13.5H11L10 22L19 9.5H13Z",
    medical: "M9.5 3H14.5V9.5H21V14.5H14.5V21H9.5V14.5H3V9.5H9.5Z",
    landslide: "M2 20L9 7L13 13L15.5 10L22 20Z",
    pollution: "M7 19A4.5 4.5 0 0 1 6.5 10A6 6 0 0 1 17.5 9A5 5 0 0 1 17.5 19Z",
    waste: "M6 7H18L16.8 21H7.2ZM4.5 4.5H9.5L10.5 3H13.5L14.5 4.5H19.5V6H4.5Z",
    fallen_tree: "M3 16.5L14 9.5L15.6 12L4.6 19Z M13 5.5A5 5 0 1 1 19.5 13.5A5 5 0 0 1 13 5.5Z",
    traffic_accident: "M4 12L6.5 6H17.5L20 12V18H17.5V20H15V18H9V20H6.5V18H4ZM7.2 11H16.8L15.8 8H8.2Z",
  };
  const STROKE = {
    flood: ["M2.5 8C5 6 7 6 9.5 8S14 10 16.5 8S20 6 21.5 8", "M2.5 13C5 11 7 11 9.5 13S14 15 16.5 13S20 11 21.5 13",
      "M2.5 18C5 16 7 16 9.5 18S14 20 16.5 18S20 16 21.5 18"],
    road_blocked: ["M3 8H21V13H3Z", "M7 8L4 13", "M12 8L9 13", "M17 8L14 13", "M21 9L19 13", "M6 13V20", "M18 13V20"],
    pothole: ["M3 15C3 11 8 10 12 10S21 11 21 15S16 19 12 19S3 18 3 15Z", "M7 15C8 13.5 10 13 12 13S16 13.5 17 15"],
    streetlight: ["M8 21H14", "M11 21V5H17", "M15 5V7.5", "M13 8H19L18 10H14Z"],
    drainage_blocked: ["M4 4H20V20H4Z", "M8 4V20", "M12 4V20", "M16 4V20", "M5 9L19 15"],
  };

  // the pictogram of `code` in white, into a SIZE × SIZE canvas context (shrunk by `k`)
  function paint(g, code, k) {
    g.save();
    g.translate(SIZE * (1 - k) / 2, SIZE * (1 - k) / 2);
    g.scale(k * SIZE / 24, k * SIZE / 24);
    g.fillStyle = g.strokeStyle = "#fff";
    g.lineWidth = 2.2; g.lineCap = "round"; g.lineJoin = "round";
    if (FILL[code]) g.fill(new Path2D(FILL[code]), "evenodd");
    else if (STROKE[code]) for (const d of STROKE[code]) g.stroke(new Path2D(d));
    else {  // a category this page does not know yet: an exclamation mark
      g.fillRect(10.5, 3.5, 3, 11);
      g.beginPath(); g.arc(12, 19, 2, 0, 2 * Math.PI); g.fill();
    }
    g.restore();
  }
  function known(code) { return FILL[code] || STROKE[code] ? code : "other"; }
  const urls = {};
  function iconUrl(code) {
    const k = known(code);
    if (!urls[k]) {
      const c = document.createElement("canvas");
      c.width = c.height = SIZE;
      paint(c.getContext("2d"), k, 1);
      urls[k] = c.toDataURL("image/png");
    }
    return urls[k];
  }
  // the symbol on its severity disc, for legends and lists
  const badges = {};
  function badgeUrl(code, severity) {
    const key = known(code) + "|" + (SEVERITY[severity] ? severity : 3);
    if (!badges[key]) {
      const c = document.createElement("canvas");
      c.width = c.height = SIZE;
      const g = c.getContext("2d");
      const col = SEVERITY[severity] || SEVERITY[3];
      g.fillStyle = `rgb(${col[0]},${col[1]},${col[2]})`;
      g.beginPath(); g.arc(SIZE / 2, SIZE / 2, SIZE / 2 - 1, 0, 2 * Math.PI); g.fill();
      paint(g, known(code), 0.6);
      badges[key] = c.toDataURL("image/png");
    }
    return badges[key];
  }

  function severityOf(props) {
    const n = Math.round(Number(props && props.severity));
    return n >= 1 && n <= 5 ? n : 3;
  }
  function position(f) {
    const g = f.geometry || {};
    return g.type === "MultiPoint" ? g.coordinates[0] : g.coordinates;
  }
  // Always drawn in front: a symbol behind a tall building would be lost.
  const ON_TOP = { depthCompare: "always", depthWriteEnabled: false };

  // "17:00 05/12/2026 (GMT+7)": a time as Đà Nẵng reads it, whatever the device's zone
  function when(iso) { return T.time(iso); }

  const I = (T.incidents = {
    when,
    CATEGORIES, SEVERITY, iconUrl, badgeUrl, severityOf,
    severityColor: (props) => SEVERITY[severityOf(props)],
    severityWord: (n) => T.t("sev." + (Math.round(Number(n)) || 3)),
    categoryName: (code) => { const s = T.t("class." + code); return s === "class." + code ? code : s; },
    // deck.gl layers for the point features of a symbol layer (one tile's worth)
    layers(props, base, layer, feats, z) {
      const D = window.deck;
      const r = (f) => 9 + severityOf(f.properties) + (z >= 15 ? 2 : 0);
      return [
        new D.ScatterplotLayer(props, base, {
          id: base.id + "-disc", data: feats, parameters: ON_TOP, billboard: true,
          getPosition: position, radiusUnits: "pixels", getRadius: r,
          getFillColor: (f) => I.severityColor(f.properties), stroked: true,
          getLineColor: [255, 255, 255, 255], lineWidthUnits: "pixels", getLineWidth: 2,
        }),
        new D.IconLayer(props, base, {
          id: base.id + "-symbol", data: feats, parameters: ON_TOP, billboard: true,
          getPosition: position, sizeUnits: "pixels", getSize: (f) => 1.25 * r(f),
          getIcon: (f) => {
            const code = known(f.properties.category);
            return { id: code, url: iconUrl(code), width: SIZE, height: SIZE, mask: true };
          },
          getColor: [255, 255, 255, 255],
        }),
      ];
    },
    // legend rows: the severity scale in words, then each category's symbol
    legend() {
      const rows = [1, 2, 3, 4, 5].map((n) => ({ label: I.severityWord(n), color: SEVERITY[n], kind: "point" }));
      for (const code of CATEGORIES) {
        rows.push({ label: I.categoryName(code), color: [120, 120, 120, 255], kind: "symbol", icon: badgeUrl(code, 3) });
      }
      return rows;
    },
  });
})();
