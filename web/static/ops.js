// The emergency console shell: the same map with the staff layers the role may see
// (water network, utility nodes). Live incidents and sensor alarms are added by a later
// release; until then the panel says so instead of showing invented data.
(function () {
  "use strict";
  const T = window.Twin;
  document.addEventListener("twin:ready", () => {
    const list = T.$("#incident-list");
    if (list) list.replaceChildren();
  });
})();
