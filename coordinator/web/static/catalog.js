// Filter the catalog table while typing (the form still filters on the server without it).
"use strict";
(function () {
  const input = document.getElementById("q");
  const table = document.querySelector(input.dataset.filter);
  const count = document.getElementById("catalog-count");
  const total = count.textContent.replace(/^\d+ of /, "");
  input.addEventListener("input", () => {
    const needle = input.value.trim().toLowerCase();
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      const text = `${row.cells[0].textContent} ${row.cells[1].textContent}`.toLowerCase();
      const match = needle === "" || text.includes(needle);
      row.hidden = !match;
      shown += match ? 1 : 0;
    }
    count.textContent = `${shown} of ${total}`;
  });
})();
