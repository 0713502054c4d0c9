// The entity list's field filter: the value, from and to inputs take the chosen field's
// input type (date, datetime-local, number), an enum's options are suggested, and the range
// inputs show only for fields that have ranges.  Without this script they are text inputs.
(function () {
  "use strict";
  function wire() {
    var select = document.getElementById("filter_field");
    if (!select) return;
    var inputs = ["filter_value", "filter_from", "filter_to"].map(function (id) {
      return document.getElementById(id);
    });
    var datalist = document.getElementById("filter-options");
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var type = option.dataset.input || "text";
      inputs.forEach(function (input) {
        input.value = "";  // an old value seldom fits the new field
        input.type = type;
        if (type === "number") input.step = "any";
        else if (type === "datetime-local") input.step = "1";
        else input.removeAttribute("step");
      });
      document.querySelectorAll(".filter-range").forEach(function (el) {
        el.hidden = option.value !== "" && option.dataset.range !== "true";
      });
      datalist.replaceChildren();
      (option.dataset.options || "").split("\n").filter(Boolean).forEach(function (value) {
        var choice = document.createElement("option");
        choice.value = value;
        datalist.appendChild(choice);
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
