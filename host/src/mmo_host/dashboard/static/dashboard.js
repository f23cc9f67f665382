/* The dashboard's charts: uPlot over the JSON the server rendered into #chart-data.
   One chart per [data-chart] figure, one series per provider; gaps are buckets with
   nothing to show (no ended payment, no callback). */
(function () {
  "use strict";
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

  function draw(figure, chart) {
    var series = [{}].concat(chart.series.map(function (s, i) {
      return { label: s.label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: true } };
    }));
    var options = {
      width: Math.max(figure.clientWidth - 16, 320),
      height: 220,
      scales: chart.unit === "%"
        ? { x: { time: true }, y: { range: [0, 100] } }
        : { x: { time: true } },
      // the page's times are UTC: so are the axes
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      series: series,
      axes: [{}, { label: chart.unit, size: 60 }],
    };
    var data = [chart.x].concat(chart.series.map(function (s) { return s.values; }));
    return new uPlot(options, data, figure);
  }

  function start() {
    var source = document.getElementById("chart-data");
    if (!source || typeof uPlot === "undefined") { return; }
    var charts = JSON.parse(source.textContent);
    var drawn = [];
    document.querySelectorAll("[data-chart]").forEach(function (figure) {
      var chart = charts[figure.getAttribute("data-chart")];
      if (chart) { drawn.push([figure, draw(figure, chart)]); }
    });
    window.addEventListener("resize", function () {
      drawn.forEach(function (pair) {
        pair[1].setSize({ width: Math.max(pair[0].clientWidth - 16, 320), height: 220 });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
