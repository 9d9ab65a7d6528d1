// Draws the dashboard's charts from the numbers the server embedded; sets body[data-rendered]
// to the number of charts drawn, which the browser tests wait for.
(function () {
  "use strict";
  var stats = JSON.parse(document.getElementById("stats-data").textContent);
  var drawn = 0;
  var width = Math.min(1050, document.body.clientWidth || 1000);
  function seconds(day) { return Date.parse(day + "T00:00:00Z") / 1000; }

  var days = stats.dau.map(function (d) { return seconds(d.day); });
  if (days.length) {
    var dau = document.getElementById("chart-dau");
    new uPlot({
      width: width, height: 240,
      series: [{}, {label: "95% low", stroke: "#9ab"}, {label: "users", stroke: "#036", width: 2},
               {label: "95% high", stroke: "#9ab"}],
      bands: [{series: [3, 1], fill: "rgba(0, 60, 120, 0.12)"}],
      axes: [{}, {}],
    }, [days, stats.dau.map(function (d) { return d.low; }), stats.dau.map(function (d) { return d.value; }),
        stats.dau.map(function (d) { return d.high; })], dau);
    drawn += 1;
  }

  var versionNames = Object.keys(stats.versions.series);
  if (stats.versions.days.length && versionNames.length) {
    var palette = ["#036", "#c60", "#393", "#939", "#c33", "#399", "#663", "#666"];
    var series = [{}], data = [stats.versions.days.map(seconds)];
    versionNames.forEach(function (name, i) {
      series.push({label: name, stroke: palette[i % palette.length], width: 2});
      data.push(stats.versions.series[name]);
    });
    new uPlot({width: width, height: 240, series: series}, data, document.getElementById("chart-versions"));
    drawn += 1;
  }
  document.body.setAttribute("data-rendered", String(drawn));
})();
