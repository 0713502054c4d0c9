/* Select-many on the Assets page (templates/assets/list.html).  The checkboxes and the bar's
   buttons are a plain form that works without this script; it adds only:
   - the bar shows once something is selected, and says how many ("3 selected");
   - "Select all on this page", and shift-click to select a range;
   - Enter in the entity search does not leave the page (htmx already lists the matches).
   Everything is delegated from the document, so results swapped in by htmx need no setup. */
(function () {
  "use strict";
  if (window.ffGallery) {
    return;
  }
  window.ffGallery = true;
  var lastPicked = null;

  function picks(form) {
    return Array.prototype.slice.call(form.querySelectorAll("input.pick"));
  }

  function update() {
    var form = document.getElementById("asset-selection");
    if (!form) {
      return;
    }
    form.classList.add("js-selection");
    var all = picks(form);
    var n = all.filter(function (box) { return box.checked; }).length;
    var max = parseInt(form.getAttribute("data-max") || "0", 10);
    form.classList.toggle("has-selection", n > 0);
    var count = document.getElementById("selected-count");
    if (count) {
      count.textContent = n === 1 ? "1 selected" : n + " selected";
      if (max && n > max) {
        count.textContent += " (at most " + max + " at once)";
      }
    }
    var selectAll = document.getElementById("select-all");
    if (selectAll) {
      selectAll.closest(".select-all").hidden = false;
      selectAll.checked = all.length > 0 && n === all.length;
      selectAll.indeterminate = n > 0 && n < all.length;
    }
  }

  document.addEventListener("click", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.classList.contains("pick")) {
      return;
    }
    var form = box.form;
    if (event.shiftKey && lastPicked && lastPicked !== box && form && lastPicked.form === form) {
      var all = picks(form);
      var from = all.indexOf(lastPicked);
      var to = all.indexOf(box);
      if (from >= 0 && to >= 0) {
        all.slice(Math.min(from, to), Math.max(from, to) + 1).forEach(function (other) {
          other.checked = box.checked;
        });
      }
    }
    lastPicked = box;
    update();
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && target.id === "select-all") {
      var form = document.getElementById("asset-selection");
      if (form) {
        picks(form).forEach(function (box) { box.checked = target.checked; });
      }
      lastPicked = null;
    }
    if (target instanceof HTMLInputElement &&
        (target.id === "select-all" || target.classList.contains("pick"))) {
      update();
    }
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "Enter" && target instanceof HTMLInputElement &&
        target.id === "entity-q" && window.htmx) {
      event.preventDefault();
      window.htmx.trigger(target, "search");
    }
  });

  // new results (a filter, a page, the uploader's refresh) start with nothing selected;
  // a page restored from the history cache keeps the boxes it had
  document.addEventListener("htmx:afterSettle", function () { lastPicked = null; update(); });
  window.addEventListener("pageshow", update);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", update);
  } else {
    update();
  }
})();
