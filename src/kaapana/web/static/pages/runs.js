// Runs list: while any run is queued or running, its state and progress refresh in place.
import { api } from "../api.js";
import { h, pageData } from "../dom.js";
import { initLayout } from "../layout.js";
import { ACTIVE_RUN_STATES, progress, stateBadge } from "../runs_common.js";

const POLL_MS = 2000;
const { project, limit } = pageData();
const rows = document.getElementById("run-rows");

function anyActive() {
  return [...document.querySelectorAll("#run-rows .state")].some((s) => ACTIVE_RUN_STATES.has(s.textContent));
}

function newRow(run) {
  return h("tr", { "data-run": run.id },
    h("td", {}, h("a", { href: `/p/${encodeURIComponent(project)}/runs/${run.id}` }, `#${run.id}`)),
    h("td", {}, h("span", {})),
    h("td", {}, `${run.workflow} `, h("span", { class: "muted" }, run.version),
      run.service ? h("span", { class: "muted" }, " service") : ""),
    h("td", {}, run.created_by),
    h("td", {}, run.created_at.replace("T", " ").slice(0, 19)),
    h("td", {}));
}

async function refresh() {
  // The admin project's pages show every project; so does the API without ?project=.
  const query = new URLSearchParams({ limit: String(Math.max(limit, 1)) });
  if (project !== "admin") query.set("project", project);
  try {
    const runs = await api("GET", `/api/v1/runs?${query}`);
    for (const run of [...runs].reverse()) {
      let row = rows.querySelector(`tr[data-run="${run.id}"]`);
      if (!row) {
        row = newRow(run);
        rows.prepend(row);
      }
      stateBadge(row.cells[1].firstElementChild, run.state);
      row.cells[5].textContent = progress(run.task_counts);
    }
  } finally {
    if (anyActive()) setTimeout(refresh, POLL_MS);
  }
}

initLayout();
if (rows && anyActive()) setTimeout(refresh, POLL_MS);
