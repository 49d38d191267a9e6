// Live changes: one EventSource on /live (anonymous on the public map, with the staff
// token on /plan and /ops). Incident changes re-fetch the live incident tiles and are
// passed on as `twin:incident` DOM events; sensor readings and alarms re-fetch the
// sensor tiles (and are passed on as `twin:sensor` and `twin:alarm`).
(function () {
  "use strict";
  const T = window.Twin, V = T.viewer;
  const L = (T.live = { source: null, events: 0, connected: false });

  function connect() {
    if (L.source || typeof EventSource === "undefined") return;
    const a = T.auth.get();
    const url = "/live" + (a ? "?access_token=" + encodeURIComponent(a.token) : "");
    const es = (L.source = new EventSource(url));
    es.addEventListener("hello", () => { L.connected = true; });
    es.addEventListener("incident", (e) => {
      let data = null;
      try { data = JSON.parse(e.data); } catch (ex) { return; }
      L.events += 1;
      V.bumpLive(["incidents", "incidents_staff"]);
      document.dispatchEvent(new CustomEvent("twin:incident", { detail: data }));
    });
    // sensor readings arrive in batches: recolour the sensor layers at most every 3 s
    let sensorTimer = null;
    es.addEventListener("sensor", (e) => {
      L.events += 1;
      let data = null;
      try { data = JSON.parse(e.data); } catch (ex) { data = null; }
      if (data) document.dispatchEvent(new CustomEvent("twin:sensor", { detail: data }));
      if (sensorTimer) return;
      sensorTimer = setTimeout(() => {
        sensorTimer = null;
        V.bumpLive(["sensors", "sensors_staff"]);
      }, 3000);
    });
    es.addEventListener("alarm", (e) => {
      let data = null;
      try { data = JSON.parse(e.data); } catch (ex) { return; }
      V.bumpLive(["sensors", "sensors_staff"]);
      document.dispatchEvent(new CustomEvent("twin:alarm", { detail: data }));
    });
    // a public warning published, expired or cancelled: warnings.js refetches the list
    es.addEventListener("warning", (e) => {
      let data = null;
      try { data = JSON.parse(e.data); } catch (ex) { data = null; }
      L.events += 1;
      document.dispatchEvent(new CustomEvent("twin:warning", { detail: data }));
    });
    // EventSource reconnects by itself (with Last-Event-ID); only note the state.
    es.onerror = () => { L.connected = false; };
  }
  L.connect = connect;
  L.close = function () { if (L.source) { L.source.close(); L.source = null; L.connected = false; } };
  window.addEventListener("pagehide", L.close);
  // the public map subscribes at once; staff pages once the role's catalogue is in
  document.addEventListener("DOMContentLoaded", () => { if (!T.config.staffOnly) connect(); });
  document.addEventListener("twin:ready", connect);
})();
