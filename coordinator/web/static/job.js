// Live progress of a job: poll the researcher API until the job has finished, then reload.
"use strict";
(function () {
  const table = document.getElementById("progress");
  const status = document.getElementById("job-status");
  const note = document.getElementById("progress-note");
  const FINISHED = new Set(["ok", "refused", "error"]);
  const url = `/v1/analyses/${table.dataset.job}`;

  function show(job) {
    status.textContent = job.status;
    status.className = `badge ${job.status}`;
    const rows = Object.keys(job.sites).sort().map((site) => {
      const tr = document.createElement("tr");
      tr.dataset.site = site;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = site;
      const td = document.createElement("td");
      td.textContent = job.sites[site];
      tr.append(th, td);
      return tr;
    });
    table.tBodies[0].replaceChildren(...rows);
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const job = await response.json();
        show(job);
        if (FINISHED.has(job.status) && job.result) {
          note.textContent = "Finished; loading the result.";
          window.location.reload();
          return;
        }
      } else {
        note.textContent = `The coordinator answered HTTP ${response.status}; retrying.`;
      }
    } catch (err) {
      note.textContent = "The coordinator did not answer; retrying.";
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
