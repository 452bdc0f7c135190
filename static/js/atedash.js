// atedash: progressive enhancement only; every page works without this file or htmx.
(function () {
  "use strict";
  // When the dashboard itself cannot be reached (network error), say so instead of doing nothing.
  document.addEventListener("htmx:sendError", function () {
    var banner = document.getElementById("client-offline");
    if (banner) return;
    banner = document.createElement("div");
    banner.id = "client-offline";
    banner.className = "banner-error";
    banner.setAttribute("role", "alert");
    banner.textContent = "The dashboard did not answer; retrying on the next refresh.";
    var main = document.getElementById("main");
    if (main) main.parentNode.insertBefore(banner, main);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful) {
      var banner = document.getElementById("client-offline");
      if (banner) banner.remove();
    }
  });
})();
