// customerlens dashboard: draws each chart from its Vega-Lite spec with the bundled Vega (no network),
// and wires the PNG/SVG buttons. Filters are a plain form (Apply), so they work with the keyboard and without script.
(function () {
  "use strict";

  var views = {};

  function draw(div) {
    var name = div.getAttribute("data-chart");
    var holder = document.getElementById("spec-" + name);
    var spec;
    try {
      spec = JSON.parse(holder.textContent);
    } catch (err) {
      div.textContent = "This chart could not be read.";
      console.error(err);
      return;
    }
    if (typeof window.vegaEmbed !== "function") {
      div.textContent = "Charts need JavaScript and the bundled Vega library (/static/vega.js).";
      return;
    }
    // ast: expressions are interpreted, never compiled with eval (the page's policy forbids it)
    window.vegaEmbed(div, spec, { actions: false, renderer: "svg", mode: "vega-lite", ast: true })
      .then(function (result) {
        views[name] = result.view;
        div.setAttribute("data-rendered", "true");
      })
      .catch(function (err) {
        div.textContent = "This chart could not be drawn: " + err;
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
    Array.prototype.forEach.call(document.querySelectorAll("div.chart[data-chart]"), draw);
    Array.prototype.forEach.call(document.querySelectorAll("button[data-download]"), function (button) {
      button.addEventListener("click", function () { download(button); });
    });
  });
}());
