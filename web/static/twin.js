// Shared glue for every page: language, sign-in state, API calls, small DOM helpers.
(function () {
  "use strict";
  const LANG_KEY = "twin.lang";
  const AUTH_KEY = "twin.auth";
  const T = (window.Twin = { config: window.TWIN_CONFIG || {} });

  // -- language ---------------------------------------------------------------------
  function storedLang() {
    try {
      const v = localStorage.getItem(LANG_KEY);
      if (v === "vi" || v === "en") return v;
    } catch (e) { /* storage disabled: fall back to Vietnamese */ }
    return "vi";
  }
  T.lang = storedLang();

  T.t = function (key, vars) {
    const texts = window.TWIN_TEXTS || {};
    let s = (texts[T.lang] && texts[T.lang][key]) || (texts.vi && texts.vi[key]) || key;
    if (vars) for (const k of Object.keys(vars)) s = s.split("{" + k + "}").join(String(vars[k]));
    return s;
  };
  // A {vi, en} title object in the current language.
  T.title = function (obj, fallback) {
    if (!obj) return fallback || "";
    return obj[T.lang] || obj.vi || obj.en || fallback || "";
  };
  // A time in Đà Nẵng's zone with the zone shown (i18n.js: TWIN_TIME.format and its options).
  T.time = (value, opts) => window.TWIN_TIME.format(value, opts);
  T.other = function (obj) {
    if (!obj) return "";
    return obj[T.lang === "vi" ? "en" : "vi"] || "";
  };

  T.applyTexts = function (root) {
    const r = root || document;
    r.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = T.t(el.dataset.i18n); });
    r.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.setAttribute("placeholder", T.t(el.dataset.i18nPlaceholder));
    });
    r.querySelectorAll("[data-i18n-title]").forEach((el) => {
      el.setAttribute("title", T.t(el.dataset.i18nTitle));
    });
    r.querySelectorAll("[data-i18n-label]").forEach((el) => {
      el.setAttribute("aria-label", T.t(el.dataset.i18nLabel));
    });
    document.documentElement.lang = T.lang;
    document.querySelectorAll("[data-lang]").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.lang === T.lang));
    });
  };

  T.setLang = function (lang) {
    if (lang !== "vi" && lang !== "en") return;
    T.lang = lang;
    try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* not remembered */ }
    T.applyTexts();
    document.dispatchEvent(new CustomEvent("twin:lang", { detail: { lang } }));
  };

  // -- sign-in state ----------------------------------------------------------------
  T.auth = {
    get() {
      try {
        const a = JSON.parse(localStorage.getItem(AUTH_KEY) || "null");
        if (!a || !a.token) return null;
        if (a.expires_at && Date.now() > a.expires_at) { T.auth.clear(); T.auth.expired = true; return null; }
        return a;
      } catch (e) { return null; }
    },
    set(a) { localStorage.setItem(AUTH_KEY, JSON.stringify(a)); },
    clear() { try { localStorage.removeItem(AUTH_KEY); } catch (e) { /* ignore */ } },
    headers() {
      const a = T.auth.get();
      return a ? { Authorization: "Bearer " + a.token } : {};
    },
    role() { const a = T.auth.get(); return a ? a.role : null; },
    isStaff() { return ["responder", "planner", "admin"].includes(T.auth.role()); },
    expired: false,
  };

  // -- API --------------------------------------------------------------------------
  // Raster tiles (PNG) that need the bearer token (flood depth is staff-only): a deck.gl
  // TileLayer that fetches each tile itself; 204 or a failed tile stays empty.
  T.tokenTiles = function (id, url, extra) {
    const D = window.deck;
    return new D.TileLayer(Object.assign({
      id, minZoom: 0, maxZoom: 18, tileSize: 256, opacity: 0.75,
      getTileData: async ({ index, signal }) => {
        const res = await fetch(url.replace("{z}", index.z).replace("{x}", index.x).replace("{y}", index.y),
          { headers: T.auth.headers(), signal });
        if (res.status === 204 || !res.ok) return null;
        return createImageBitmap(await res.blob());
      },
      renderSubLayers: (props) => {
        if (!props.data) return null;
        const { west, south, east, north } = props.tile.bbox;
        return new D.BitmapLayer(props, { data: null, image: props.data, bounds: [west, south, east, north] });
      },
      onTileError: () => { /* a tile that failed stays empty */ },
    }, extra || {}));
  };
  // fetch with the bearer token; JSON answers parsed; errors carry the server's message.
  T.api = async function (path, opts) {
    const o = Object.assign({}, opts || {});
    // errors come back in the page's language (server/errors.py)
    o.headers = Object.assign({ Accept: "application/json", "Accept-Language": T.lang || "vi" }, T.auth.headers(), o.headers || {});
    const res = await fetch(path, o);
    if (res.status === 401 && T.auth.get()) {
      T.auth.clear();
      T.auth.expired = true;
    }
    if (!res.ok) {
      let msg = res.status + " " + res.statusText;
      try {
        const body = await res.json();
        msg = body.description || body.detail || body.message || msg;
        if (Array.isArray(msg)) msg = msg.map((d) => d.msg || JSON.stringify(d)).join("; ");
      } catch (e) { /* not JSON */ }
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
    if (o.raw) return res;
    const type = res.headers.get("content-type") || "";
    return type.includes("json") ? res.json() : res.text();
  };

  // -- DOM --------------------------------------------------------------------------
  T.$ = (sel, root) => (root || document).querySelector(sel);
  T.el = function (tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of [].concat(children || [])) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  };
  let statusTimer = null;
  T.status = function (msg, kind, hideAfterMs) {
    const s = T.$("#status");
    if (!s) return;
    s.textContent = msg || "";
    s.dataset.kind = kind || "info";
    s.hidden = !msg;
    clearTimeout(statusTimer);
    if (msg && hideAfterMs) statusTimer = setTimeout(() => { s.hidden = true; }, hideAfterMs);
  };

  // -- header: language buttons, account --------------------------------------------
  function renderAccount() {
    const who = T.$("#who"), link = T.$("#signin-link"), out = T.$("#signout");
    if (!who) return;
    const a = T.auth.get();
    if (a) {
      who.textContent = T.t("auth.as", { user: a.username || "", role: T.t("role." + a.role) });
      who.hidden = false; link.hidden = true; out.hidden = false;
    } else {
      who.hidden = true; out.hidden = true; link.hidden = false;
      link.setAttribute("href", "/signin?next=" + encodeURIComponent(location.pathname));
    }
  }
  T.renderAccount = renderAccount;

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-lang]").forEach((b) => {
      b.addEventListener("click", () => T.setLang(b.dataset.lang));
    });
    const out = T.$("#signout");
    if (out) out.addEventListener("click", () => { T.auth.clear(); location.reload(); });
    T.applyTexts();
    renderAccount();
  });
  document.addEventListener("twin:lang", renderAccount);
})();
