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
})();
