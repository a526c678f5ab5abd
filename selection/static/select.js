// "Keep me signed in": ticking the box reloads the page with the choice at
// once, so every sign-in link carries it; without the script the form's
// Apply button does the same.
(function () {
  "use strict";
  var box = document.getElementById("remember");
  var apply = document.getElementById("remember-apply");
  if (!box || !box.form) {
    return;
  }
  if (apply) {
    apply.hidden = true;
  }
  box.addEventListener("change", function () {
    box.form.submit();
  });
})();

// Live filtering of the sign-in list as you type: a progressive
// enhancement of the server-side search (?q=), which works without it.
(function () {
  "use strict";
  var input = document.getElementById("q");
  var list = document.getElementById("providers");
  var count = document.getElementById("match-count");
  if (!input || !list) {
    return;
  }
  var items = Array.prototype.map.call(list.querySelectorAll("li"), function (li) {
    var el = li.firstElementChild;
    var name = li.querySelector(".n");
    var key = ((name ? name.textContent : "") + "\u0000" + (el && el.id ? el.id.slice(4) : "")).toLowerCase();
    return { li: li, key: key };
  });
  var sections = list.querySelectorAll("section");
  var timer = 0;

  function filter() {
    var q = input.value.trim().toLowerCase();
    var shown = 0;
    items.forEach(function (it) {
      var hit = q === "" || it.key.indexOf(q) >= 0;
      it.li.hidden = !hit;
      if (hit) {
        shown++;
      }
    });
    Array.prototype.forEach.call(sections, function (s) {
      s.hidden = s.querySelector("li:not([hidden])") === null;
    });
    if (count) {
      count.textContent = q === "" ? "" : count.getAttribute("data-live")
        .replace("{count}", String(shown)).replace("{total}", String(items.length));
    }
  }

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(filter, 80);
  });
})();
