// Follows a save until its avatar exists, then opens it. Without JavaScript the page refreshes itself.
(() => {
  "use strict";
  const box = document.getElementById("job");
  const status = document.getElementById("job-status");
  const fill = (tpl, values) => tpl.replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ""));
  async function poll() {
    try {
      const resp = await fetch(`/api/jobs/${encodeURIComponent(box.dataset.token)}`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      const job = await resp.json();
      if (!resp.ok) { status.textContent = job.error || `HTTP ${resp.status}`; return; }
      if (job.state === "done") { window.location.assign(job.url); return; }
      if (job.state === "failed") { status.textContent = fill(box.dataset.failed, job); return; }
      if (job.state === "queued") {
        let text = fill(box.dataset.queued, { position: job.position || 1 });
        if (job.eta_s) text += `, ${fill(box.dataset.eta, { eta: Math.round(job.eta_s) })}`;
        status.textContent = text;
      } else if (job.step) {
        status.textContent = fill(box.dataset.step, { step: job.step, total: job.total_steps });
      } else {
        status.textContent = box.dataset.running;
      }
    } catch (err) {
      status.textContent = String(err);
    }
    setTimeout(poll, 700);
  }
  poll();
})();
