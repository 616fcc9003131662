// taskq dashboard: the overview's live figures and chart. No inline script anywhere
// (the Content-Security-Policy forbids it); this file is the app's own.
"use strict";

(function () {
  var body = document.body;
  var feed = body.getAttribute("data-feed");
  if (!feed) {
    return;
  }
  var period = parseInt(body.getAttribute("data-refresh-ms"), 10) || 3000;
  var MAX_POINTS = 60;
  var points = []; // {completed, failed}: per interval, computed here, never stored
  var last = null;
  var timer = null;
  var SVG = "http://www.w3.org/2000/svg";

  function show(numbers) {
    var cells = document.querySelectorAll("[data-field]");
    for (var i = 0; i < cells.length; i++) {
      var name = cells[i].getAttribute("data-field");
      if (Object.prototype.hasOwnProperty.call(numbers, name)) {
        cells[i].textContent = String(numbers[name]); // text, never markup
      }
    }
    if (last !== null) {
      points.push({
        completed: Math.max(0, numbers.completed_tasks - last.completed_tasks),
        failed: Math.max(0, numbers.failed_tasks - last.failed_tasks),
      });
      if (points.length > MAX_POINTS) {
        points.shift();
      }
      draw();
    }
    last = numbers;
    var updated = document.getElementById("updated");
    if (updated) {
      updated.textContent = "updated " + new Date().toLocaleTimeString();
    }
  }

  function line(svg, values, top, cls) {
    var width = 600, height = 150;
    var step = width / (MAX_POINTS - 1);
    var coords = values.map(function (value, i) {
      var x = (i + MAX_POINTS - values.length) * step;
      var y = height - (value / top) * (height - 10);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    var path = document.createElementNS(SVG, "polyline");
    path.setAttribute("points", coords.join(" "));
    path.setAttribute("class", cls);
    svg.appendChild(path);
  }

  function draw() {
    var svg = document.getElementById("chart");
    if (!svg) {
      return;
    }
    while (svg.firstChild) {
      svg.removeChild(svg.firstChild);
    }
    var completed = points.map(function (p) { return p.completed; });
    var failed = points.map(function (p) { return p.failed; });
    var top = Math.max(1, Math.max.apply(null, completed.concat(failed)));
    var label = document.createElementNS(SVG, "text");
    label.setAttribute("x", "4");
    label.setAttribute("y", "12");
    label.setAttribute("class", "axis");
    label.textContent = top + " per " + period / 1000 + " s";
    svg.appendChild(label);
    line(svg, completed, top, "completed");
    line(svg, failed, top, "failed");
  }

  function refresh() {
    fetch(feed, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          window.location.assign("/ui/login");
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (numbers) {
        if (numbers) {
          show(numbers);
        }
      })
      .catch(function () { /* the next tick tries again */ });
  }

  function start() {
    if (timer === null) {
      refresh();
      timer = window.setInterval(refresh, period);
    }
  }

  function stop() {
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
  }

  // Paused while the tab is hidden: no requests nobody sees.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      stop();
      last = null; // a gap is not an interval
    } else {
      start();
    }
  });
  if (!document.hidden) {
    start();
  }
})();
