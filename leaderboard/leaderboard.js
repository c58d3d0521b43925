// rag-bench leaderboard: sort any table column, filter tasks, switch headline / full view. No network, no dependencies.
(function () {
  "use strict";
  // Without this script both views stay visible; with it, the headline view shows first.
  document.documentElement.classList.add("js");

  function cellKey(row, index) {
    var cell = row.cells[index];
    if (!cell) { return { num: NaN, text: "" }; }
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    var num = raw.trim() === "" ? NaN : Number(raw);
    return { num: num, text: raw.trim().toLowerCase() };
  }

  function compare(a, b) {
    var aNum = !isNaN(a.num), bNum = !isNaN(b.num);
    if (aNum && bNum) { return a.num - b.num; }
    if (aNum !== bNum) { return aNum ? -1 : 1; }
    return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
  }

  function sortBy(table, header) {
    var index = Array.prototype.indexOf.call(header.parentNode.children, header);
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var k1 = cellKey(r1, index), k2 = cellKey(r2, index);
      var emptyFirst = isNaN(k1.num) && k1.text === "", emptySecond = isNaN(k2.num) && k2.text === "";
      if (emptyFirst !== emptySecond) { return emptyFirst ? 1 : -1; }  // blanks last either way
      var order = compare(k1, k2);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(header.parentNode.children, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.tabIndex = 0;
      th.title = th.title || "Sort by this column";
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, th); }
      });
    });
  });

  var filter = document.getElementById("task-filter");
  function applyFilter() {
    var wanted = filter.value;
    Array.prototype.forEach.call(document.querySelectorAll("section[data-task]"), function (section) {
      section.classList.toggle("hidden", wanted !== "" && section.getAttribute("data-task") !== wanted);
    });
  }
  if (filter) {
    filter.addEventListener("change", applyFilter);
    applyFilter();
  }

  var toggle = document.getElementById("view-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var full = document.body.classList.toggle("full-view");
      toggle.setAttribute("aria-pressed", full ? "true" : "false");
      toggle.textContent = full ? "Show headline metrics" : "Show all metrics";
    });
  }
})();
