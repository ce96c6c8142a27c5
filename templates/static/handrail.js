// Handrail's one script: progressive enhancement only. Every page works without it.
// Pages that show live data name their event stream in <body data-live="…">; when the
// server says something changed, the page reloads itself, unless the person is in the
// middle of typing (then a banner offers the reload). A page that names where to fetch what
// changed patches itself instead: the Now page its changed rows (<body data-rows="…">), an
// incident page its new timeline entries and alerts (<body data-updates="…" data-after="…">).
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
  function reload() {
    source.close();
    window.location.reload();
  }
  // A change a page cannot patch: reload, or offer to when the person is typing.
  function reloadUnlessTyping() {
    if (typing()) {
      var banner = document.getElementById("live-banner");
      if (banner) banner.hidden = false;
      return;
    }
    reload();
  }
  // Patching: the stream's event names the changed incidents ("4,17"; "*": anything). The
  // Now page asks for its changed rows: the server answers with each list's order as
  // incident numbers and the rows of the changed incidents and any the page lacks; the page
  // keeps its own rows for the rest. An incident page asks for the timeline entries after the
  // newest it shows and the alerts when they changed; "data-reload" means reload. One fetch
  // at a time; a change heard meanwhile waits for the next.
  var rows = document.body.getAttribute("data-rows");
  var updates = document.body.getAttribute("data-updates");
  var after = document.body.getAttribute("data-after");
  var fetching = false;
  var pending = false;
  var changed = [];
  function patch() {
    if (fetching) { pending = true; return; }
    fetching = true;
    pending = false;
    var request = rows ? rows + "?changed=" + changed.join(",") + "&shown=" + shownNumbers().join(",") : updates + "?after=" + after;
    changed = [];
    fetch(request, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = document.createElement("template");
        fresh.innerHTML = html;
        var update = fresh.content.getElementById(rows ? "now-update" : "incident-update");
        if (!update || !(rows ? applyRows(update) : applyUpdates(update))) return reloadUnlessTyping();
        fetching = false;
        if (pending) patch();
      })
      .catch(reload);
  }
  function shownNumbers() {
    return Array.prototype.map.call(document.querySelectorAll("[data-list] > li[data-number]"), function (li) {
      return li.getAttribute("data-number");
    });
  }
  function applyRows(update) {
    // Each list as the server orders it: its rows where it sent them, the page's own otherwise.
    var plans = [];
    var names = ["open", "resolved"];
    for (var i = 0; i < names.length; i++) {
      var current = document.querySelector('[data-list="' + names[i] + '"]');
      var rendered = update.querySelector('[data-rows="' + names[i] + '"]');
      if (!current || !rendered) return false;
      var order = update.getAttribute("data-" + names[i]);
      var items = order ? [] : Array.prototype.slice.call(rendered.children);
      var numbers = order ? order.split(",") : [];
      for (var j = 0; j < numbers.length; j++) {
        var selector = ':scope > li[data-number="' + numbers[j] + '"]';
        var item = rendered.querySelector(selector) || current.querySelector(selector);
        if (!item) return false;
        items.push(item);
      }
      plans.push([current, items]);
    }
    plans.forEach(function (plan) { plan[0].replaceChildren.apply(plan[0], plan[1]); });
    var count = document.getElementById("open-count");
    if (count) count.textContent = update.getAttribute("data-open-count");
    var more = document.getElementById("more-slot");
    var freshMore = update.querySelector("#more-slot");
    if (more && freshMore) more.replaceWith(freshMore);
    return true;
  }
  function applyUpdates(update) {
    var timeline = document.querySelector("#timeline ol.timeline");
    if (update.hasAttribute("data-reload") || !timeline) return false;
    timeline.prepend.apply(timeline, Array.prototype.slice.call(update.querySelector("ol.timeline").children));
    var alerts = update.querySelector("#alerts");
    var current = document.getElementById("alerts");
    if (alerts && current) current.replaceWith(alerts);
    after = update.getAttribute("data-after");
    return true;
  }
  source.addEventListener("changed", function (event) {
    if (submitting) return;
    if (window.fetch && event.data && event.data !== "*" && (rows || (updates && after))) {
      changed = changed.concat(event.data.split(","));
      return patch();
    }
    reloadUnlessTyping();
  });
  document.addEventListener("submit", function () {
    submitting = true;
    source.close();
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
