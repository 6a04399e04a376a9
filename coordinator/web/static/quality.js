// Data quality page: run a new report, or a flag's suggested request, then open its job.
"use strict";
(function () {
  const error = document.getElementById("run-error");
  async function run(button) {
    button.disabled = true;
    error.hidden = true;
    try {
      const response = await fetch("/v1/analyses", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: button.dataset.request,
      });
      const answer = await response.json();
      if (response.status === 202) {
        window.location.assign(`/jobs/${answer.job_id}`);
        return;
      }
      error.textContent = answer.detail || answer.title || `HTTP ${response.status}`;
    } catch (err) {
      error.textContent = "The request could not be sent: " + err;
    }
    error.hidden = false;
    button.disabled = false;
  }
  for (const button of document.querySelectorAll("#run-report, .run-suggestion")) {
    button.addEventListener("click", () => run(button));
  }
})();
