// Draws the dashboard's charts from the numbers the server embedded (no other request is made).
// body[data-rendered] ends as the number of charts drawn, which the browser tests wait for; each
// chart's container gets data-series-colors so that a test can look for those pixels.
(function () {
  "use strict";
  var stats = JSON.parse(document.getElementById("stats-data").textContent);
  var css = getComputedStyle(document.documentElement);
  function color(name) { return css.getPropertyValue(name).trim(); }
  var palette = color("--series").split(/\s+/);
  var DAY = 86400;
  function seconds(day) { return Date.parse(day + "T00:00:00Z") / 1000; }
  function fmtDay(s) { return new Date(s * 1000).toISOString().slice(0, 10); }

  // The x axis spans exactly the days shown (half a day of margin each side), ticks fall on whole
  // days, and labels are dates: one day of data gives one labelled day, not years of empty axis.
  function timeAxis(days) {
    var xs = days.map(seconds);
    return {
      range: [Math.min.apply(null, xs) - DAY / 2, Math.max.apply(null, xs) + DAY / 2],
      // space: at least 90 px between date labels, so a month on a phone shows every week or so.
      axis: {stroke: color("--muted"), grid: {stroke: color("--line")}, ticks: {stroke: color("--line")},
             space: 90, incrs: [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 91 * DAY],
             values: function (u, splits) { return splits.map(fmtDay); }},
      xs: xs
    };
  }
  function yAxis() {
    return {stroke: color("--muted"), grid: {stroke: color("--line")}, ticks: {stroke: color("--line")}, size: 56};
  }

  var charts = [], drawn = 0;
  function draw(id, build) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var made = build(el.clientWidth || 600);
    el.setAttribute("data-series-colors", made.colors.join(" "));
    // uPlot draws after its first commit; count a chart (and record its x range) only once it has.
    made.opts.hooks = {draw: [function (u) {
      el.setAttribute("data-x-range", fmtDay(u.scales.x.min + DAY / 2) + " " + fmtDay(u.scales.x.max - DAY / 2));
      if (!el.hasAttribute("data-drawn")) {
        el.setAttribute("data-drawn", "1");
        drawn += 1;
        document.body.setAttribute("data-rendered", String(drawn));
      }
    }]};
    var plot = new uPlot(made.opts, made.data, el);
    // The band's two edges are series of their own; their legend entries would only say "--".
    (made.bandEdges || []).forEach(function (i) {
      var row = el.querySelectorAll(".u-legend .u-series")[i];
      if (row) { row.classList.add("band-edge"); }
    });
    charts.push({el: el, plot: plot});
  }

  if (stats.dau.some(function (d) { return d.value !== null; })) {
    draw("chart-dau", function (width) {
      var t = timeAxis(stats.dau.map(function (d) { return d.day; }));
      var accent = color("--accent");
      return {
        colors: [accent], bandEdges: [1, 3],
        opts: {
          width: width, height: 240, scales: {x: {time: false, range: t.range}, y: {range: function (u, lo, hi) { return [0, Math.max(1, hi) * 1.1]; }}},
          axes: [t.axis, yAxis()],
          series: [{label: "Day", value: function (u, v) { return v == null ? "" : fmtDay(v); }},
                   {label: "95% low", stroke: "transparent", points: {show: false}},
                   {label: "daily users", stroke: accent, width: 2, points: {show: true, size: 7, fill: accent}},
                   {label: "95% high", stroke: "transparent", points: {show: false}}],
          bands: [{series: [3, 1], fill: color("--band")}]
        },
        data: [t.xs, stats.dau.map(function (d) { return d.low; }), stats.dau.map(function (d) { return d.value; }),
               stats.dau.map(function (d) { return d.high; })]
      };
    });
  }

  var names = Object.keys(stats.versions.series);
  if (stats.versions.days.length && names.length) {
    draw("chart-versions", function (width) {
      var t = timeAxis(stats.versions.days);
      var series = [{label: "Day", value: function (u, v) { return v == null ? "" : fmtDay(v); }}], data = [t.xs], colors = [];
      names.forEach(function (name, i) {
        var c = palette[i % palette.length];
        colors.push(c);
        series.push({label: name, stroke: c, width: 2, points: {show: true, size: 7, fill: c}});
        data.push(stats.versions.series[name]);
      });
      return {
        colors: colors,
        opts: {width: width, height: 240, scales: {x: {time: false, range: t.range}, y: {range: function (u, lo, hi) { return [0, Math.max(1, hi) * 1.1]; }}},
               axes: [t.axis, yAxis()], series: series},
        data: data
      };
    });
  }

  // Charts follow their container's width (phones, rotated screens, resized windows).
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      charts.forEach(function (c) { c.plot.setSize({width: c.el.clientWidth || 600, height: 240}); });
    }, 100);
  });
})();
