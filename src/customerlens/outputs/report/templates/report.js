(function () {
  "use strict";

  // Charts: each <div class="chart" data-spec="ID"> gets the Vega-Lite spec in <script id="ID">.
  function renderCharts() {
    var divs = document.querySelectorAll("div.chart[data-spec]");
    Array.prototype.forEach.call(divs, function (div) {
      var holder = document.getElementById(div.getAttribute("data-spec"));
      var spec;
      try {
        spec = JSON.parse(holder.textContent);
      } catch (err) {
        div.textContent = "This chart could not be read.";
        console.error(err);
        return;
      }
      if (typeof window.vegaEmbed !== "function") {
        div.textContent = "Charts need JavaScript and the inline Vega library.";
        return;
      }
      window.vegaEmbed(div, spec, { actions: false, renderer: "svg", mode: "vega-lite" })
        .then(function () { div.setAttribute("data-rendered", "true"); })
        .catch(function (err) {
          div.textContent = "This chart could not be drawn: " + err;
          console.error(err);
        });
    });
  }

  // Sortable tables: click (or Enter on) a heading; numbers sort by data-value, text naturally.
  function cellKey(row, index) {
    var cell = row.cells[index];
    if (!cell) { return null; }
    if (cell.hasAttribute("data-value")) {
      var raw = cell.getAttribute("data-value");
      var number = raw === "" ? NaN : parseFloat(raw);
      return isNaN(number) ? null : number;
    }
    var text = cell.textContent.trim();
    return text === "" ? null : text.toLowerCase();
  }

  function compare(a, b, sign) {
    if (a === null && b === null) { return 0; }
    if (a === null) { return 1; }   // blanks last, whatever the direction
    if (b === null) { return -1; }
    if (typeof a === "number" && typeof b === "number") { return sign * (a - b); }
    return sign * String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: "base" });
  }

  function sortBy(table, th) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var current = th.getAttribute("aria-sort");
    var numeric = th.getAttribute("data-type") === "number";
    var direction;
    if (current === "ascending") { direction = "descending"; }
    else if (current === "descending") { direction = "ascending"; }
    else { direction = numeric ? "descending" : "ascending"; }
    Array.prototype.forEach.call(th.parentNode.children, function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction);
    var sign = direction === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, position) { return { row: row, key: cellKey(row, index), position: position }; });
    keyed.sort(function (x, y) { return compare(x.key, y.key, sign) || x.position - y.position; });
    keyed.forEach(function (item) { body.appendChild(item.row); });
  }

  function makeSortable() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      var heads = table.tHead ? table.tHead.rows[0].cells : [];
      Array.prototype.forEach.call(heads, function (th) {
        th.tabIndex = 0;
        th.title = "Sort by " + th.textContent.trim();
        th.addEventListener("click", function () { sortBy(table, th); });
        th.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, th); }
        });
      });
    });
  }

  function start() {
    makeSortable();
    renderCharts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
