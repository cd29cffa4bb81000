// Progressive enhancement only: every form works without this file.
(function () {
  "use strict";
  // Pre-fill the time zone from the browser on a fresh sign-up form.
  var tz = document.querySelector("input[name=timezone][data-autofill]");
  if (tz && tz.value === "UTC" && window.Intl) {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) { tz.value = zone; }
    } catch (e) { /* keep UTC */ }
  }
  // Picking a weekday means "weekly".
  var day = document.querySelector("select[name=weekly_day]");
  var weekly = document.querySelector("input[name=frequency][value=weekly]");
  if (day && weekly) {
    day.addEventListener("change", function () { weekly.checked = true; });
  }
  // Filter the topic cards as the reader types; groups with a match open, the rest hide.
  var box = document.querySelector(".topic-search");
  var search = document.getElementById("topic-search");
  if (box && search) {
    box.hidden = false;
    var none = box.querySelector(".topic-search-none");
    var groups = Array.prototype.slice.call(document.querySelectorAll("details.topic-group"));
    var opened = groups.map(function (g) { return g.open; });
    search.addEventListener("input", function () {
      var q = search.value.trim().toLowerCase();
      var any = false;
      groups.forEach(function (g, i) {
        var shown = 0;
        g.querySelectorAll("label.topic").forEach(function (card) {
          var hit = !q || card.textContent.toLowerCase().indexOf(q) >= 0;
          card.hidden = !hit;
          if (hit) { shown += 1; }
        });
        g.hidden = shown === 0;
        g.open = q ? shown > 0 : opened[i];
        if (shown) { any = true; }
      });
      if (none) { none.hidden = any; }
    });
  }
})();
