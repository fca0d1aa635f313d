// illuminate-sync dashboard: draws each chart from the JSON spec beside it (plotly.min.js, loaded before this file),
// and switches the student-group choices. Charts inside a hidden choice are drawn when it is shown: plotly measures
// its container, which has no size while hidden.
(function () {
  "use strict";
  var pending = [];

  function draw(div) {
    if (div.getAttribute("data-drawn")) {
      return;
    }
    div.setAttribute("data-drawn", "1");
    var spec = JSON.parse(document.getElementById(div.id + "-spec").textContent);
    pending.push(Plotly.newPlot(div, spec.data, spec.layout, { displaylogo: false, responsive: true }));
  }

  function drawVisible() {
    document.querySelectorAll("div.chart").forEach(function (div) {
      if (div.offsetParent !== null) {
        draw(div);
      }
    });
    var waiting = pending.slice();
    document.body.removeAttribute("data-charts-drawn");
    Promise.all(waiting).then(function () {
      document.body.setAttribute("data-charts-drawn", String(document.querySelectorAll("div.chart[data-drawn]").length));
    });
  }

  function showChoice(select) {
    var blocks = document.querySelectorAll('.choice[data-chooser="' + select.getAttribute("data-chooser") + '"]');
    blocks.forEach(function (block) {
      block.hidden = block.getAttribute("data-choice") !== select.value;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select.chooser").forEach(function (select) {
      select.addEventListener("change", function () {
        showChoice(select);
        drawVisible();
      });
      showChoice(select);
    });
    drawVisible();
  });
})();
