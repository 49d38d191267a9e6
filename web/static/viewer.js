// The map: our own basemap and overlays from the composite vector tiles, drawn with
// deck.gl's MVTLayer on the deck that pydeck's createDeck built (global `deckInstance`).
(function () {
  "use strict";
  const T = window.Twin, cfg = T.config, S = T.style, D = window.deck;
  /* global deckInstance */
  const deckgl = typeof deckInstance !== "undefined" && deckInstance ? deckInstance
    : new D.Deck({ parent: document.getElementById("deck-container"), initialViewState: cfg.home, controller: true });

  // Below these zooms a layer is left out of the composite tile the viewer asks for:
  // z13 tiles carry up to 20,000 buildings each, and the city reads better (and loads
  // several times faster) without them until z14.
  const DRAW_FROM = { buildings: 14 };

  const V = (T.viewer = {
    deck: deckgl,
    layers: [], byId: {}, enabled: new Set(), known: new Set(),
    date: new Date().toISOString().slice(0, 10),
    extrude: false,
    extras: new Map(),
    tileErrors: 0,
    liveVersion: {},
  });

  // -- catalogue ----------------------------------------------------------------------
  // Utility networks (pipes, valves, cables) start off outside a utilities view (?view=
  // utilities): they hide the analysis underneath. Their toggles stay in the layer panel.
  const UTILITIES = new Set(["water_network", "utility_nodes", "power_network"]);
  V.utilitiesView = cfg.view === "utilities" || /[?&]view=utilities\b/.test(location.search);
  V.offByDefault = (l) => UTILITIES.has(l.id) && !V.utilitiesView;
  V.setLayers = function (list) {
    V.layers = list.slice();
    V.byId = Object.fromEntries(list.map((l) => [l.id, l]));
    for (const l of list) {
      if (!V.known.has(l.id)) { V.known.add(l.id); if (!V.offByDefault(l)) V.enabled.add(l.id); }
    }
    for (const id of Array.from(V.enabled)) if (!V.byId[id]) V.enabled.delete(id);
    V.drawOrder = list.slice().sort((a, b) => S.order(a) - S.order(b));
    V.loadOptions = { mvt: { workerUrl: cfg.workerUrl }, fetch: { headers: T.auth.headers() } };
    V.render();
    document.dispatchEvent(new CustomEvent("twin:layers"));
  };
  V.setEnabled = function (id, on) {
    if (on) V.enabled.add(id); else V.enabled.delete(id);
    V.render();
    document.dispatchEvent(new CustomEvent("twin:layers"));
  };
  // Refetch the tiles of live layers (a change arrived on /live).
  V.bumpLive = function (ids) {
    let any = false;
    for (const id of ids || V.layers.filter((l) => l.live).map((l) => l.id)) {
      if (!V.byId[id] || !V.byId[id].live) continue;
      // a time stamp, not a counter: another page's cached tiles never match it
      V.liveVersion[id] = Math.max(Date.now(), (V.liveVersion[id] || 0) + 1);
      any = true;
    }
    if (any) V.render({ labels: false });
  };
  V.setDate = function (iso) { V.date = iso; V.render(); };
  V.setExtra = function (id, layer) {
    if (layer) V.extras.set(id, layer); else V.extras.delete(id);
    V.render();
  };

  // -- per-tile sub-layers --------------------------------------------------------------
  const groupCache = new WeakMap();
  function groups(data) {
    let g = groupCache.get(data);
    if (!g) {
      g = {};
      for (const f of data) {
        const k = f.properties && f.properties.layerName;
        (g[k] || (g[k] = [])).push(f);
      }
      groupCache.set(data, g);
    }
    return g;
  }
  function isoDay(v) {
    if (v === undefined || v === null || v === "") return null;
    if (typeof v === "number") return new Date(v > 1e11 ? v : v * 86400000).toISOString().slice(0, 10);
    return String(v).slice(0, 10);
  }
  function inForce(layer, feats) {
    const a = layer.time_field, b = layer.time_end_field, d = V.date;
    return feats.filter((f) => {
      const from = isoDay(f.properties[a]), to = b ? isoDay(f.properties[b]) : null;
      return (!from || from <= d) && (!to || d < to);
    });
  }
  // Geometry kind of one feature (a layer declared `Geometry` mixes them).
  function geomKind(f) {
    const t = (f.geometry && f.geometry.type) || "";
    return t.includes("Polygon") ? "polygon" : t.includes("Line") ? "line" : t.includes("Point") ? "point" : null;
  }
  function subLayers(layer, feats, props, z, part) {
    const kind = part || S.kind(layer), st = layer.style || {};
    if (kind === "any") {
      // a mixed layer: its polygons, lines and points each drawn the way their kind is
      const parts = { polygon: [], line: [], point: [] };
      for (const f of feats) { const k = geomKind(f); if (k) parts[k].push(f); }
      return Object.keys(parts).filter((k) => parts[k].length)
        .flatMap((k) => subLayers(layer, parts[k], props, z, k));
    }
    const id = props.id + "-" + layer.id + (part ? "-" + part : "");
    // Flat layers test depth but do not write it: among themselves painter's order holds
    // (no z-fighting between road casing and fill when the map is tilted), while a
    // building of a neighbouring tile still hides the ground behind it.
    const FLAT = { depthWriteEnabled: false };
    const base = { id, data: feats, pickable: true, parameters: FLAT, twinLayer: layer.id };
    const out = [];
    if (kind === "polygon" && part) {
      // the areas of a mixed layer (an incident's extent): translucent, outlined
      out.push(new D.GeoJsonLayer(props, base, {
        filled: true, stroked: true,
        getFillColor: (f) => S.fill(layer, f.properties).slice(0, 3).concat([90]),
        getLineColor: (f) => S.line(layer, f.properties), lineWidthUnits: "pixels", getLineWidth: 2,
      }));
    } else if (kind === "polygon") {
      const filled = Boolean(st.fill || st.colors);
      const ext = Boolean(S.extrude(layer)) && V.extrude;
      out.push(new D.GeoJsonLayer(props, base, {
        // outlines on flat buildings only when they are big enough to need them
        filled, stroked: !filled || (layer.id === "buildings" && !ext && z >= 15),
        extruded: ext, wireframe: false, parameters: ext ? {} : FLAT,
        getElevation: (f) => Number(f.properties[S.extrude(layer)]) || (Number(f.properties.levels) || 2) * 3.3,
        getFillColor: (f) => S.fill(layer, f.properties),
        getLineColor: filled ? [150, 135, 120, 255] : S.line(layer),
        lineWidthUnits: "pixels", getLineWidth: filled ? 0.6 : st.line_width || 1.5,
        material: { ambient: 0.45, diffuse: 0.6, shininess: 16, specularColor: [60, 64, 70] },
      }));
    } else if (kind === "line") {
      const metric = Boolean(st.widths);
      if (metric) {
        out.push(new D.GeoJsonLayer(props, base, {
          id: id + "-casing", pickable: false, getLineColor: [175, 165, 155, 255],
          lineWidthUnits: "meters", lineWidthScale: 2.2, lineWidthMinPixels: z >= 14 ? 2.2 : 1,
          getLineWidth: (f) => S.width(layer, f.properties), lineCapRounded: true, lineJointRounded: true,
        }));
      }
      out.push(new D.GeoJsonLayer(props, base, {
        getLineColor: (f) => S.line(layer, f.properties),
        lineWidthUnits: metric ? "meters" : "pixels", lineWidthScale: metric ? 1.7 : 1,
        lineWidthMinPixels: metric ? (z >= 14 ? 1.2 : 0.6) : 1,
        getLineWidth: (f) => S.width(layer, f.properties), lineCapRounded: true, lineJointRounded: true,
      }));
    } else if (kind === "point" && S.symbols(layer) && T.incidents) {
      out.push(...T.incidents.layers(props, base, layer, feats, z));
    } else if (kind === "point" && !S.label(layer)) {
      // labelled points (places) are drawn by labels.js only
      out.push(new D.GeoJsonLayer(props, base, {
        pointType: "circle", getFillColor: (f) => S.fill(layer, f.properties),
        getLineColor: [255, 255, 255, 255], stroked: true, lineWidthUnits: "pixels", getLineWidth: 1.5,
        pointRadiusUnits: "pixels", getPointRadius: S.radius(layer) + (z >= 15 ? 1 : 0),
      }));
    }
    return out;
  }

  function renderTile(props) {
    const data = props.data;
    if (!Array.isArray(data) || !data.length) return null;
    const g = groups(data), z = props.tile.index.z, out = [];
    for (const layer of V.drawOrder) {
      let feats = g[layer.id];
      if (!feats || !V.enabled.has(layer.id) || z < V.drawFrom(layer)) continue;
      // layers with a validity period show what was in force on V.date
      if (layer.time_field && layer.time_end_field) feats = inForce(layer, feats);
      if (feats.length) out.push(...subLayers(layer, feats, props, z));
    }
    return out;
  }

  V.drawFrom = (layer) => Math.max(layer.minzoom || 0, DRAW_FROM[layer.id] || 0);

  // MVTLayer asking, per zoom, only for the layers drawn at that zoom (see DRAW_FROM).
  class TwinMVTLayer extends D.MVTLayer {
    getTileData(loadProps) {
      const z = loadProps.index.z;
      const ids = this.props.twinLayers.filter((l) => z >= V.drawFrom(l)).map((l) => l.id);
      if (!ids.length) return Promise.resolve([]);
      if (this.props.twinArchive) return this.archiveTile(loadProps, ids);
      const url = D._getURLFromTemplate("/tiles/" + ids.join(",") + "/{z}/{x}/{y}.mvt" + (this.props.twinQuery || ""), loadProps);
      const lo = this.getLoadOptions() || {};
      const loadOptions = Object.assign({}, lo, {
        core: Object.assign({}, lo.core, { mimeType: "application/x-protobuf" }),
        mvt: Object.assign({}, lo.mvt, { shape: "geojson", tileIndex: loadProps.index,
          coordinates: this.context.viewport.resolution ? "wgs84" : "local" }),
      });
      return this.props.fetch(url, { propName: "data", layer: this, loadOptions, signal: loadProps.signal });
    }
    // A tile of the PMTiles archive (archive.js): its bytes, parsed by the same loader.
    async archiveTile(loadProps, ids) {
      const { x, y, z } = loadProps.index, a = this.props.twinArchive;
      if (z < a.minZoom) return [];
      const got = await a.source.getZxy(z, x, y, loadProps.signal);
      if (!got || !got.data) return [];
      const blob = URL.createObjectURL(new Blob([got.data], { type: "application/x-protobuf" }));
      try {
        const lo = this.getLoadOptions() || {};
        const loadOptions = Object.assign({}, lo, {
          core: Object.assign({}, lo.core, { mimeType: "application/x-protobuf" }),
          mvt: Object.assign({}, lo.mvt, { shape: "geojson", tileIndex: loadProps.index,
            coordinates: this.context.viewport.resolution ? "wgs84" : "local", layers: ids }),
        });
        return await this.props.fetch(blob, { propName: "data", layer: this, loadOptions, signal: loadProps.signal });
      } finally {
        URL.revokeObjectURL(blob);
      }
    }
  }
  TwinMVTLayer.layerName = "TwinMVTLayer";

  function mvt(id, layers, query) {
    const ids = layers.map((l) => l.id);
    // the basemap's layers a PMTiles archive holds come from it (archive.js)
    const archive = id === "basemap-archive" ? V.archive : null;
    return new TwinMVTLayer({
      id,
      twinArchive: archive,
      data: "/tiles/" + ids.join(",") + "/{z}/{x}/{y}.mvt" + (query || ""),
      twinQuery: query || "",
      twinLayers: layers,
      binary: false,
      loadOptions: V.loadOptions,
      minZoom: 0, maxZoom: archive ? Math.min(16, archive.maxZoom) : 16,
      refinementStrategy: "best-available", maxRequests: 6, debounceTime: 60,
      maxCacheSize: 200,
      pickable: true,
      renderSubLayers: renderTile,
      // Changing this re-renders the cached tiles (toggles, language, date, 3D) without refetching.
      twinKey: [ids.filter((i) => V.enabled.has(i)).join(","), V.extrude, V.date, T.lang].join("|"),
      visible: ids.some((i) => V.enabled.has(i)),
      onTileLoad: () => { if (V.updateLabels) V.updateLabels(); },
      onTileError: (err) => {
        V.tileErrors += 1;
        const what = layers.map((l) => T.title(l.title)).join(", ");
        console.warn("tile error", id, err);
        T.status(T.t("status.tileError", { msg: what }), "error", 8000);
      },
    });
  }

  V.render = function (opts) {
    for (const l of V.layers) l.propMap = l.propMap || Object.fromEntries((l.properties || []).map((p) => [p.name, p]));
    // one composite request per tile for the basemap, one for the other layers, and one
    // per live layer (short cache; a live layer failing leaves the others standing)
    const base = V.layers.filter((l) => l.basemap);
    const over = V.layers.filter((l) => !l.basemap && !l.live);
    const out = [];
    const fromArchive = V.archive ? base.filter((l) => V.archive.layers.has(l.id)) : [];
    const fromApi = V.archivePending ? [] : base.filter((l) => !fromArchive.includes(l));
    if (fromArchive.length) out.push(mvt("basemap-archive", fromArchive));
    if (fromApi.length) out.push(mvt("basemap", fromApi));
    if (base.length && V.edge) out.push(V.edge);  // the soft edge of the data (basemap.js)
    if (over.length) out.push(mvt("overlays", over));
    for (const l of V.layers.filter((x) => !x.basemap && x.live)) {
      // a new version (bumped by live.js on each change) makes the layer fetch fresh tiles
      const v = V.liveVersion[l.id];
      out.push(mvt("live-" + l.id, [l], v ? "?v=" + v : ""));
    }
    for (const [k, l] of V.extras) if (k !== "labels") out.push(...[].concat(l));
    if (V.extras.has("labels")) out.push(V.extras.get("labels"));
    deckgl.setProps({ layers: out });
    if (V.updateLabels && !(opts && opts.labels === false)) V.updateLabels();
  };

  // -- view state, URL hash, 3D from about z15 -------------------------------------------
  function parseHash() {
    const m = location.hash.slice(1).split("/").map(Number);
    if (m.length < 3 || m.slice(0, 3).some((n) => !Number.isFinite(n))) return null;
    return { zoom: m[0], latitude: m[1], longitude: m[2], bearing: m[3] || 0, pitch: Number.isFinite(m[4]) ? m[4] : cfg.home.pitch };
  }
  let hashTimer = null;
  function onViewStateChange({ viewState }) {
    V.viewState = viewState;
    if (V.onView) V.onView(viewState);  // map controls: scale bar, compass (mapctl.js)
    const ext = V.byId.buildings ? S.extrudeFromZoom(V.byId.buildings) : 15;
    const want = viewState.zoom >= ext - 0.5;
    if (want !== V.extrude) { V.extrude = want; V.render(); }
    clearTimeout(hashTimer);
    hashTimer = setTimeout(() => {
      const v = V.viewState;
      const h = `#${v.zoom.toFixed(2)}/${v.latitude.toFixed(5)}/${v.longitude.toFixed(5)}/${Math.round(v.bearing)}/${Math.round(v.pitch)}`;
      history.replaceState(null, "", h);
      document.dispatchEvent(new CustomEvent("twin:view"));
    }, 250);
  }
  function viewport() { return deckgl.viewManager ? deckgl.getViewports()[0] : null; }
  V.getViewState = function () {
    const vp = viewport();
    if (!vp) return V.viewState ? Object.assign({ width: window.innerWidth, height: window.innerHeight }, V.viewState) : null;
    return { longitude: vp.longitude, latitude: vp.latitude, zoom: vp.zoom, pitch: vp.pitch, bearing: vp.bearing, width: vp.width, height: vp.height };
  };
  V.jumpTo = function (vs, duration) {
    const cur = V.getViewState() || cfg.home;
    const next = Object.assign({}, cur, vs);
    delete next.width; delete next.height;
    if (duration) {
      next.transitionDuration = duration;
      next.transitionInterpolator = new D.FlyToInterpolator();
    }
    onViewStateChange({ viewState: next });
    deckgl.setProps({ initialViewState: next });
  };
  // Fly to a point or fit a [minx, miny, maxx, maxy] box (WGS 84 degrees).
  V.flyTo = function ({ lon, lat, bbox, zoom }) {
    const cur = V.getViewState();
    let target = { longitude: lon, latitude: lat, zoom: zoom || 16 };
    if (bbox && cur && bbox[2] - bbox[0] > 1e-5 && bbox[3] - bbox[1] > 1e-5) {
      const vp = new D.WebMercatorViewport({ width: cur.width, height: cur.height });
      const fit = vp.fitBounds([[bbox[0], bbox[1]], [bbox[2], bbox[3]]], { padding: Math.min(80, cur.width / 6) });
      target = { longitude: fit.longitude, latitude: fit.latitude, zoom: Math.min(17, fit.zoom) };
    }
    V.jumpTo(target, 1200);
  };
  V.project = function (lonlat) {
    const vp = viewport();
    return vp ? vp.project(lonlat) : null;
  };
  // tiles on screen now, per MVT layer instance (labels are made from them)
  V.selectedTiles = function () {
    const lm = deckgl.layerManager;
    if (!lm) return [];
    return lm.getLayers().filter((l) => l instanceof TwinMVTLayer && l.props.visible && l.state.tileset)
      .flatMap((l) => l.state.tileset.selectedTiles || []);
  };
  V.tilesLoaded = function () {
    const lm = deckgl.layerManager;
    if (!lm) return false;
    const mvts = lm.getLayers().filter((l) => l instanceof TwinMVTLayer);
    return mvts.length > 0 && mvts.every((l) => !l.props.visible || l.isLoaded);
  };
  V.idle = function () {
    return V.tilesLoaded() && !V.labelsPending && !deckgl.needsRedraw({ clearRedrawFlags: false }) && !(deckgl.viewManager && deckgl.viewManager.needsRedraw({ clearRedrawFlags: false }));
  };
  V.featureOf = function (info) {
    if (!info || !info.object) return null;
    const o = info.object, p = o.properties || {};
    const lid = p.layerName || (info.layer && info.layer.props.twinLayer);
    const layer = V.byId[lid];
    if (!layer) return null;
    const fid = o.id !== undefined ? o.id : p.id;
    return { layer, properties: p, id: fid, coordinate: info.coordinate };
  };
  V.pickAt = function (x, y) {
    const f = V.featureOf(deckgl.pickObject({ x, y, radius: 3 }));
    return f ? { layer: f.layer.id, id: f.id, properties: f.properties } : null;
  };

  // -- events -----------------------------------------------------------------------------
  const tip = document.getElementById("tooltip");
  deckgl.setProps({
    onViewStateChange,
    pickingRadius: 4,
    getCursor: ({ isDragging, isHovering }) => (V.cursor ? V.cursor : isDragging ? "grabbing" : isHovering ? "pointer" : "grab"),
    onHover: (info) => {
      if (!tip) return;
      const f = V.mode ? null : V.featureOf(info);
      if (!f) { tip.hidden = true; return; }
      const p = f.properties;
      const code = p.road_class || p.kind || p.use || "";
      const named = T.t("class." + code);
      const name = (T.lang === "en" && p.name_en) || p.name_vi || p.name ||
        (named.startsWith("class.") ? code : named);
      tip.textContent = T.title(f.layer.title) + (name ? ": " + name : "");
      tip.style.left = info.x + 12 + "px";
      tip.style.top = info.y + 12 + "px";
      tip.hidden = false;
    },
  });
  // Clicks are detected here rather than by deck's tap recogniser, which drops taps whose
  // pointerup arrives late (slow software-rendered frames): a press and release within a
  // few pixels is a click, however long it took.
  function handleClick(x, y, event) {
    const vp = viewport();
    const info = deckgl.pickObject({ x, y, radius: 4 }) || { x, y };
    if (!info.coordinate && vp) info.coordinate = vp.unproject([x, y]);
    if (V.onMapClick && V.onMapClick(info, event)) return;
    document.dispatchEvent(new CustomEvent("twin:pick", { detail: V.featureOf(info) }));
  }
  const mapEl = document.getElementById("deck-container");
  let press = null;
  mapEl.addEventListener("pointerdown", (e) => {
    press = e.button === 0 ? { x: e.clientX, y: e.clientY } : null;
  });
  mapEl.addEventListener("pointerup", (e) => {
    if (!press || e.button !== 0) return;
    const moved = Math.hypot(e.clientX - press.x, e.clientY - press.y);
    press = null;
    if (moved > 5 || !deckgl.viewManager) return;
    const r = mapEl.getBoundingClientRect();
    handleClick(e.clientX - r.left, e.clientY - r.top, e);
  });
  mapEl.addEventListener("keydown", (e) => {
    // Enter on the focused map picks what is at its centre (keyboard access to attributes)
    if (e.key !== "Enter" || e.target !== mapEl || !deckgl.viewManager) return;
    const vp = viewport();
    handleClick(vp.width / 2, vp.height / 2, e);
  });
  document.addEventListener("twin:lang", () => V.render());

  // a ?pmtiles= archive holds the basemap (archive.js): wait for it rather than ask /tiles
  V.archivePending = !!new URLSearchParams(location.search).get("pmtiles");
  const start = parseHash();
  if (start) V.jumpTo(start);
  else V.viewState = Object.assign({}, cfg.home);
  // signed in: panels.js sets the role's layers once it has them (one set of tile requests)
  if (T.auth.get()) V.setLayers([]);
  else V.setLayers(cfg.layers || []);

  // test and console hook
  window.twinViewer = {
    getViewState: V.getViewState, pickAt: V.pickAt, project: V.project, tilesLoaded: V.tilesLoaded,
    idle: V.idle, flyTo: V.flyTo, jumpTo: V.jumpTo, setLayerVisible: V.setEnabled,
    layerIds: () => V.layers.map((l) => l.id), enabled: () => Array.from(V.enabled),
    tileErrors: () => V.tileErrors,
    // ids of the deck.gl layers drawn now (tile layers, overlays such as routes or floods)
    deckLayerIds: () => (deckgl.props.layers || []).flat().filter(Boolean).map((l) => l.id),
    liveVersion: () => Object.assign({}, V.liveVersion),
    // features per catalogue layer in the tiles on screen (enabled, at a zoom it draws at)
    tileFeatures: () => {
      const n = {};
      for (const t of V.selectedTiles()) {
        if (!Array.isArray(t.content) || !t.isVisible) continue;
        for (const [id, feats] of Object.entries(groups(t.content))) {
          const l = V.byId[id];
          if (l && V.enabled.has(id) && t.index.z >= V.drawFrom(l)) n[id] = (n[id] || 0) + feats.length;
        }
      }
      return n;
    },
    // instances deck.gl draws now per catalogue layer (its visible primitive sub-layers)
    drawnFeatures: () => {
      const n = {}, lm = deckgl.layerManager;
      for (const l of lm ? lm.getLayers() : []) {
        if (l.isComposite) continue;
        let p = l, id = null, visible = true;
        for (; p; p = p.parent) {
          if (p.props.visible === false) visible = false;
          if (!id && p.props.twinLayer) id = p.props.twinLayer;
        }
        if (id && visible) n[id] = (n[id] || 0) + (l.getNumInstances ? l.getNumInstances() : 0);
      }
      return n;
    },
  };
})();
