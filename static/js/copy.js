// atedash: "Copy" buttons next to keys, ids, tokens and IPs on detail pages.
// The page marks each value with data-copy="what it is" (e.g. <code data-copy="key">); this script adds
// the button after it. Without JavaScript there is no button (never a dead one) and the value stays
// ordinary selectable text. A static file, as the CSP allows no inline script.
(function () {
  "use strict";

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function fallbackCopy(element) {
    // No Clipboard API (a page served over plain HTTP to a remote browser): select the value and
    // ask for a copy; if even that is refused the value stays selected for Ctrl+C.
    selectText(element);
    try {
      return document.execCommand("copy");
    } catch (e) {
      return false;
    }
  }

  // One polite live region says what happened ("Copied key"); the button's own text is CSS
  // (static/css/mobile.css: .copy-button::before), so it adds nothing to the value's textContent.
  function announce(text) {
    var region = document.getElementById("copy-status");
    if (!region) {
      region = document.createElement("span");
      region.id = "copy-status";
      region.className = "visually-hidden";
      region.setAttribute("role", "status");
      document.body.appendChild(region);
    }
    region.textContent = text;
  }

  function done(button, ok) {
    button.setAttribute("data-copied", ok ? "yes" : "no");
    announce((ok ? "Copied " : "Selected ") + button.getAttribute("data-what") + (ok ? "" : "; press Ctrl+C to copy"));
    window.setTimeout(function () { button.removeAttribute("data-copied"); }, 1500);
  }

  function copy(element, button) {
    var text = element.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { done(button, true); },
        function () { done(button, fallbackCopy(element)); }
      );
    } else {
      done(button, fallbackCopy(element));
    }
  }

  function addButtons(root) {
    var values = root.querySelectorAll("[data-copy]");
    for (var i = 0; i < values.length; i++) {
      var element = values[i];
      if (element.getAttribute("data-copy-ready")) continue;
      element.setAttribute("data-copy-ready", "yes");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.setAttribute("data-what", element.getAttribute("data-copy"));
      button.setAttribute("aria-label", "Copy " + element.getAttribute("data-copy"));
      if (element.id) button.id = "copy-" + element.id;
      button.addEventListener("click", copy.bind(null, element, button));
      element.insertAdjacentElement("afterend", button);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { addButtons(document); });
  } else {
    addButtons(document);
  }
  document.addEventListener("htmx:afterSettle", function (event) { addButtons(event.target); });
})();
