// The tracking page /track/{token}: a citizen's report by its follow-up token — status,
// the public timeline, the answer due date (Đà Nẵng time), photos and the spot on a small
// map. Refreshed when /live says the incident changed (and every 30 s besides: a report
// not yet public sends no public events).
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer, el = T.el, D = window.deck;
  const token = decodeURIComponent((location.pathname.split("/track/")[1] || "").split("/")[0]);
  const K = (T.track = { token, data: null, loads: 0 });
  const when = (iso) => (T.incidents ? T.incidents.when(iso) : iso || "");

  function withToken(url) {
    if (!url) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }
  function statusText(d) {
    if (d.status_label) return d.status_label;
    // Open311 says open/closed; its status_notes start with the incident's own status
    const code = String(d.status_notes || "").split(/[;:]/)[0].trim() || d.status;
    const s = T.t("status." + code);
    return s.startsWith("status.") ? code || "" : s;
  }
  function render() {
    const d = K.data;
    if (!d) return;
    T.$("#track-msg").hidden = true;
    T.$("#track-body").hidden = false;
    const st = T.$("#track-status");
    st.textContent = statusText(d);
    st.dataset.status = d.status || "";
    const cat = T.$("#track-category");
    cat.replaceChildren(
      T.incidents ? el("img", { src: T.incidents.badgeUrl(d.service_code, 3), alt: "", width: 18, height: 18 }) : null,
      " " + (T.incidents ? T.incidents.categoryName(d.service_code) : d.service_code || ""),
      d.service_request_id ? ` (#${d.service_request_id})` : "");
    T.$("#track-sent").textContent = when(d.requested_datetime) || "—";
    T.$("#track-due").textContent = when(d.expected_datetime) || "—";
    T.$("#track-public").textContent = d.public === undefined ? "—"
      : T.t(d.public ? "track.publicYes" : "track.publicNo");
    T.$("#track-supporters").textContent = String(d.supporters || 0);
    T.$("#track-description").textContent = d.description || "";
    const ol = T.$("#track-timeline");
    ol.replaceChildren();
    const items = Array.isArray(d.timeline) ? d.timeline : [];
    if (!items.length) ol.appendChild(el("li", { class: "muted", text: T.t("track.noTimeline") }));
    for (const t of items) {
      // the server words each entry; a staff comment is marked as one
      const head = t.kind === "comment" ? T.t("track.kind.comment") + ": " : "";
      const word = t.status ? T.t("status." + t.status) : "";
      const body = t.text || (word.startsWith("status.") ? t.status : word);
      ol.appendChild(el("li", { "data-kind": t.kind || "", "data-status": t.status || "" }, [
        el("time", { datetime: t.at, text: when(t.at) }), head + body]));
    }
    const media = Array.isArray(d.media) ? d.media : [];
    T.$("#track-photos-box").hidden = media.length === 0;
    T.$("#track-photos").replaceChildren(...media.map((m, i) =>
      el("a", { href: withToken(m.url), target: "_blank", rel: "noopener" },
        [el("img", { src: withToken(m.thumb || m.url), alt: T.t("track.photos") + " " + (i + 1) })])));
    const link = T.$("#track-link");
    link.textContent = link.href = location.origin + "/track/" + encodeURIComponent(token);
    document.title = statusText(d) + " · " + T.t("track.title") + " — Da Nang Twin";
  }
  function drawSpot(first) {
    const d = K.data;
    const lon = Number(d && d.long), lat = Number(d && d.lat);
    if (!Number.isFinite(lon) || !Number.isFinite(lat)) return;
    V.setExtra("track-spot", new D.ScatterplotLayer({
      id: "track-spot", data: [[lon, lat]], getPosition: (p) => p, pickable: false,
      radiusUnits: "pixels", getRadius: 12, filled: false, stroked: true,
      getLineColor: [11, 110, 153, 255], lineWidthUnits: "pixels", getLineWidth: 3,
      billboard: true, parameters: { depthCompare: "always", depthWriteEnabled: false },
    }));
    if (first) V.jumpTo({ longitude: lon, latitude: lat, zoom: 17, pitch: 0, bearing: 0 });
  }
  async function load() {
    if (!token) { T.$("#track-msg").textContent = T.t("track.notFound"); return; }
    let d;
    try {
      const rows = await T.api(`/open311/v2/tokens/${encodeURIComponent(token)}.json?lang=${T.lang}`,
        { headers: { "Accept-Language": T.lang } });
      d = Array.isArray(rows) ? rows[0] : rows;
      if (d && d.status === undefined && d.service_request_id) {
        // an older server answers the token with the request id only: read the request
        const req = await T.api(`/open311/v2/requests/${encodeURIComponent(d.service_request_id)}.json`);
        d = Object.assign({}, req[0] || {}, d);
      }
    } catch (e) {
      T.$("#track-msg").textContent = e.status === 404 ? T.t("track.notFound") : e.message;
      T.$("#track-msg").hidden = false;
      return;
    }
    const first = !K.data;
    K.data = d;
    K.loads += 1;
    render();
    drawSpot(first);
    document.dispatchEvent(new CustomEvent("twin:track"));
  }
  K.reload = load;
  document.addEventListener("DOMContentLoaded", () => {
    // this page is about one report: no layer list; its panel open (also in a phone's sheet)
    const layers = T.$("#layer-panel");
    if (layers) layers.hidden = true;
    if (T.panels && T.$("#track-panel")) T.panels.show(T.$("#track-panel"));
    load();
  });
  document.addEventListener("twin:lang", load);
  document.addEventListener("twin:incident", (e) => {
    const id = e.detail && (e.detail.id || (e.detail.properties || {}).id);
    if (!K.data || id === undefined || String(id) === String(K.data.service_request_id)) load();
  });
  setInterval(() => { if (document.visibilityState === "visible") load(); }, 30000);
  window.twinTrack = { data: () => K.data, loads: () => K.loads };
})();
