/* Keeps an agency import's progress bar current without reloading the page.
 *
 * Without script the page refreshes itself (a <meta refresh> inside <noscript>). With script,
 * this fetches the same page every second and swaps in its #import-status section, until the
 * import's status is no longer "importing". Static file: the CSP allows no inline script.
 */
(function () {
  "use strict";
  var section = document.getElementById("import-status");
  if (!section || section.getAttribute("data-status") !== "importing") return;
  if (!window.fetch || !window.DOMParser) {
    window.setTimeout(function () { window.location.reload(); }, 2000);
    return;
  }
  function poll() {
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.text(); })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("import-status");
        if (!fresh) return;
        var status = fresh.getAttribute("data-status");
        section.innerHTML = fresh.innerHTML;
        section.setAttribute("data-status", status);
        if (status === "importing") window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
})();
