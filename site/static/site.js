/* uisbench site: sortable tables (no dependencies). Click a header to sort; again to reverse. */
(function () {
  "use strict";
  function cellValue(row, i, numeric) {
    var cell = row.cells[i];
    if (!cell) return numeric ? NaN : "";
    var v = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    return numeric ? (v === "" ? NaN : parseFloat(v)) : v.toLowerCase();
  }
  function sortTable(table, th, i) {
    var numeric = th.getAttribute("data-type") === "num";
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, i, numeric), y = cellValue(b, i, numeric);
      if (numeric) {
        if (isNaN(x) && isNaN(y)) return 0;
        if (isNaN(x)) return 1; /* missing values always last */
        if (isNaN(y)) return -1;
        return asc ? x - y : y - x;
      }
      return asc ? x.localeCompare(y) : y.localeCompare(x);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortTable(table, th, i); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortTable(table, th, i); });
    });
  });
})();
