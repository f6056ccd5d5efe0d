/* "Add another day" on the admin session form without a round trip.
 *
 * The form works without this script: the button is a submit button that asks the server for
 * the same form with one more empty row. Here the button becomes a plain button (so Enter in a
 * field saves the form, as the Save button is then the first submit button) that copies the
 * last row, empties it, numbers its fields, and moves focus to its start. Static file: the CSP
 * allows no inline script.
 */
(function () {
  "use strict";
  var button = document.querySelector("[data-add-day]");
  var count = document.querySelector("[data-meeting-rows]");
  var status = document.querySelector("[data-meetings-status]");
  if (!button || !count || !document.querySelector("[data-meeting-row]")) return;
  var limit = 60;
  button.type = "button";

  function renumber(node, from, to) {
    var prefix = "meeting-" + from + "-";
    var next = "meeting-" + to + "-";
    ["id", "name", "for", "aria-describedby"].forEach(function (attr) {
      Array.prototype.forEach.call(node.querySelectorAll("[" + attr + "]"), function (el) {
        el.setAttribute(attr, el.getAttribute(attr).split(prefix).join(next));
      });
    });
  }

  button.addEventListener("click", function () {
    var rows = document.querySelectorAll("[data-meeting-row]");
    if (rows.length >= limit) {
      status.textContent = "A session meets on at most " + limit + " days.";
      return;
    }
    var last = rows[rows.length - 1];
    var index = parseInt(count.value, 10);
    var day = rows.length + 1;
    var row = last.cloneNode(true);
    renumber(row, last.getAttribute("data-meeting-row"), index);
    row.setAttribute("data-meeting-row", String(index));
    Array.prototype.forEach.call(row.querySelectorAll(".field-error"), function (el) {
      el.parentNode.removeChild(el);
    });
    Array.prototype.forEach.call(row.querySelectorAll(".has-error"), function (el) {
      el.classList.remove("has-error");
    });
    Array.prototype.forEach.call(row.querySelectorAll("input"), function (input) {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
      if (input.type === "checkbox") input.checked = false;
      else input.value = "";
    });
    Array.prototype.forEach.call(row.querySelectorAll("label"), function (label) {
      // Only the label's own text: its "required" marker is an element beside it.
      Array.prototype.forEach.call(label.childNodes, function (part) {
        if (part.nodeType !== 3) return;
        part.nodeValue = part.nodeValue.replace(/(day) \d+/i, function (_, word) {
          return word + " " + day;
        });
      });
    });
    last.parentNode.insertBefore(row, last.nextSibling);
    count.value = String(index + 1);
    status.textContent = "Day " + day + " added.";
    var start = row.querySelector("input[type=datetime-local]");
    if (start) start.focus();
  });
})();
