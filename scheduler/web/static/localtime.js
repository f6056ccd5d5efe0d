/* Adds the reader's own local time after a session's time when the reader's zone differs.
 *
 * The page already says when a session happens in its own zone ("9:00 AM CST"), so it reads
 * correctly without this script. Each such time is a <span class="when"> carrying the UTC
 * start and end and the session's IANA zone; when the reader's browser zone shows those
 * instants differently, "(your time: ...)" follows it. Static file: the CSP allows no inline
 * script.
 */
(function () {
  "use strict";
  if (typeof Intl !== "object" || !Intl.DateTimeFormat) return;
  var reader = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!reader) return;

  function formatter(zone) {
    return new Intl.DateTimeFormat("en-US", {
      timeZone: zone, weekday: "short", month: "short", day: "numeric",
      hour: "numeric", minute: "2-digit", timeZoneName: "short"
    });
  }

  function range(fmt, start, end) {
    if (typeof fmt.formatRange === "function") return fmt.formatRange(start, end);
    return fmt.format(start) + " – " + fmt.format(end);
  }

  var mine = formatter(reader);
  var nodes = document.querySelectorAll("span.when[data-zone][data-starts][data-ends]");
  Array.prototype.forEach.call(nodes, function (node) {
    var start = new Date(node.getAttribute("data-starts"));
    var end = new Date(node.getAttribute("data-ends"));
    if (isNaN(start.getTime()) || isNaN(end.getTime())) return;
    var theirs;
    try {
      theirs = formatter(node.getAttribute("data-zone"));
    } catch (e) {
      return;
    }
    var shown = range(mine, start, end);
    if (shown === range(theirs, start, end)) return;
    var extra = document.createElement("span");
    extra.className = "reader-time";
    extra.textContent = " (your time: " + shown + ")";
    node.insertAdjacentElement("afterend", extra);
  });
})();
