// A federated run at its orchestrator: cancel it, or ask a site for a job's logs.
import { api, attempt, showMessage } from "../api.js";
import { onAction, pageData } from "../dom.js";
import { initLayout } from "../layout.js";

initLayout();
const part = encodeURIComponent;

onAction("cancel-run", async (run) => {
  if (!window.confirm(`Cancel federated run #${run}?`)) return;
  const path = `/api/v1/federation/runs/${part(run)}/cancel`;
  if ((await attempt(() => api("POST", path))) !== undefined) window.location.reload();
});

onAction("request-logs", async (job, button) => {
  const path = `/api/v1/federation/runs/${part(pageData().run)}/jobs/${part(job)}/logs`;
  if ((await attempt(() => api("POST", path))) !== undefined) {
    button.disabled = true;
    showMessage("Asked: the logs arrive with the site's next poll; reload the page to see them.", "notice");
  }
});
