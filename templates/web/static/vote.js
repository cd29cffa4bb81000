// The mailed 👍/👎 link opens a page whose form this file submits, so a person votes with one
// click while a plain fetch of the link (a mail scanner) changes nothing. Without JavaScript
// the page shows the button instead.
(function () {
  "use strict";
  var form = document.querySelector("form[data-autosubmit]");
  if (!form) { return; }
  // Only when the link is opened: coming back to the page (Back after an undo, or a reload)
  // shows the button rather than voting again behind the reader's back.
  var nav = window.performance && performance.getEntriesByType
    ? performance.getEntriesByType("navigation")[0] : null;
  if (nav && (nav.type === "back_forward" || nav.type === "reload")) { return; }
  form.submit();
})();
