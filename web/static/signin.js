// Sign-in: POST the form to /auth/token (OAuth2 password flow), keep the token and the
// role in localStorage, then go back to the page that sent us here.
(function () {
  "use strict";
  const T = window.Twin;
  function nextUrl() {
    const n = new URLSearchParams(location.search).get("next") || "/";
    // only same-site paths: never bounce to another host
    return n.startsWith("/") && !n.startsWith("//") ? n : "/";
  }
  document.addEventListener("DOMContentLoaded", () => {
    const form = T.$("#signin-form"), err = T.$("#signin-error");
    if (new URLSearchParams(location.search).get("expired")) err.textContent = T.t("auth.expired");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.textContent = "";
      const body = new URLSearchParams({ username: form.username.value, password: form.password.value });
      try {
        const res = await fetch("/auth/token", {
          method: "POST", body, headers: { Accept: "application/json" },
        });
        if (res.status === 401) { err.textContent = T.t("auth.wrong"); return; }
        const data = await res.json();
        if (!res.ok) { err.textContent = T.t("auth.failed", { msg: data.description || data.detail || res.status }); return; }
        T.auth.set({
          token: data.access_token, role: data.role, username: form.username.value,
          expires_at: Date.now() + (data.expires_in || 3600) * 1000 - 5000,
        });
        location.replace(nextUrl());
      } catch (ex) {
        err.textContent = T.t("auth.failed", { msg: ex.message });
      }
    });
    form.username.focus();
  });
})();
