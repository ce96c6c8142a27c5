// Handrail's one script: progressive enhancement only. Every page works without it.
// Pages that show live data name their event stream in <body data-live="…">; when the
// server says something changed, the page reloads itself, unless the person is in the
// middle of typing (then a banner offers the reload).
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
