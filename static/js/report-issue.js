// The report issue form: one subject list grouped by kind. Only the chosen kind's group is offered, and its first
// subject is selected, so nobody picks a subject of another kind. Without JavaScript every group stays visible and
// the server refuses a mismatch. Native selects keep the keyboard behaviour.
(function () {
  "use strict";
  document.querySelectorAll("select[data-kind-select]").forEach(function (subject) {
    var kind = document.getElementById(subject.dataset.kindSelect);
    if (!kind) return;
    function filter() {
      var first = null;
      subject.querySelectorAll("optgroup").forEach(function (group) {
        var match = group.dataset.kind === kind.value;
        group.hidden = !match;
        group.disabled = !match;
        if (match) first = group.querySelector("option:not([disabled])");
      });
      var current = subject.selectedOptions[0];
      if (!current || current.parentElement.disabled) {
        if (first) { first.selected = true; } else { subject.value = ""; }
      }
    }
    kind.addEventListener("change", filter);
    filter();
  });
})();
