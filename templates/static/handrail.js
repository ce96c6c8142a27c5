// Handrail's one script: progressive enhancement only. Every page works without it.
// Pages that show live data name their event stream in <body data-live="…">; when the
// server says something changed, the page reloads itself, unless the person is in the
// middle of typing (then a banner offers the reload).
(function () {
  "use strict";
  // The browser's time zone, for pages to show times in unless the person chose one.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var current = document.cookie.split("; ").filter(function (c) { return c.indexOf("tz=") === 0; })[0];
    if (zone && current !== "tz=" + encodeURIComponent(zone)) {
      document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* no Intl: times stay in UTC */ }
})();
(function () {
  "use strict";
  var url = document.body && document.body.getAttribute("data-live");
  if (!url || !window.EventSource) return;
  var submitting = false;
  var source = new EventSource(url);
  function typing() {
    var fields = document.querySelectorAll("textarea, input[type=text], input:not([type])");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value !== fields[i].defaultValue) return true;
    }
    var active = document.activeElement;
    return !!active && (active.tagName === "TEXTAREA" || active.tagName === "SELECT" || (active.tagName === "INPUT" && active.type !== "submit"));
  }
  source.addEventListener("changed", function () {
    if (submitting) return;
    if (typing()) {
      var banner = document.getElementById("live-banner");
      if (banner) banner.hidden = false;
      return;
    }
    source.close();
    window.location.reload();
  });
  document.addEventListener("submit", function () {
    submitting = true;
    source.close();
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
