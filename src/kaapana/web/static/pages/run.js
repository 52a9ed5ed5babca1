// One run: polled until it ends; the DAG as SVG, tasks in place, a task's log streamed,
// artifacts and the manifest once the run is over; cancel, retry and rerun by state.
import { api, attempt, showMessage } from "../api.js";
import { h, onAction, pageData } from "../dom.js";
import { initLayout } from "../layout.js";
import { ACTIVE_RUN_STATES, stateBadge } from "../runs_common.js";
import "../run_dag.js";

const POLL_MS = 1000;
const { project, run: runId } = pageData();
const base = `/api/v1/runs/${runId}`;
const taskRows = document.getElementById("task-rows");
let following = null; // the AbortController of the log being streamed

function actionsFor(state) {
  const shown = {
    cancel: ACTIVE_RUN_STATES.has(state),
    retry: state === "failed" || state === "canceled",
    rerun: !ACTIVE_RUN_STATES.has(state),
  };
  for (const button of document.querySelectorAll("[data-run-action]")) {
    button.hidden = !shown[button.dataset.runAction];
  }
}

function taskRow(task) {
  const cells = Array.from({ length: 8 }, () => h("td", {}));
  const log = h("button", { type: "button", class: "link", "data-log": task.id }, "Log");
  const row = h("tr", { "data-task": task.id }, cells, h("td", {}, log));
  taskRows.append(row);
  return row;
}

function showTasks(tasks) {
  for (const task of tasks) {
    const row = taskRows.querySelector(`tr[data-task="${task.id}"]`) ?? taskRow(task);
    const values = [
      task.id, task.step, task.series_instance_uid ?? "(all)", null, task.attempts,
      task.progress === null ? "" : `${Math.round(task.progress * 100)}%`, task.worker ?? "", task.error,
    ];
    values.forEach((value, i) => {
      if (i === 3) {
        const badge = row.cells[3].firstElementChild ?? row.cells[3].appendChild(h("span", {}));
        stateBadge(badge, task.state);
      } else {
        row.cells[i].textContent = String(value);
      }
    });
    row.dataset.step = task.step;
  }
}

function artifactLink(name) {
  const path = name.split("/").map(encodeURIComponent).join("/");
  return h("a", { href: `${base}/artifacts/${path}`, download: name.split("/").pop() }, name);
}

async function showResults() {
  const artifacts = await attempt(() => api("GET", `${base}/artifacts`));
  const list = document.getElementById("artifacts");
  if (artifacts?.length) {
    list.replaceChildren(...artifacts.map((a) =>
      h("li", {}, artifactLink(a.name), " ", h("span", { class: "muted" }, `${a.size} bytes, sha256 ${a.sha256.slice(0, 12)}`))));
  }
  if (artifacts?.some((a) => a.name === "manifest.json")) {
    const manifest = await attempt(() => api("GET", `${base}/artifacts/manifest.json`));
    if (manifest) document.getElementById("manifest").textContent = JSON.stringify(manifest, null, 2);
  }
}

async function load() {
  const run = await attempt(() => api("GET", base));
  if (!run) return;
  stateBadge(document.getElementById("run-state"), run.state);
  document.getElementById("run-error").textContent = run.error;
  actionsFor(run.state);
  document.getElementById("dag").show(run.dag, run.tasks);
  showTasks(run.tasks);
  if (ACTIVE_RUN_STATES.has(run.state)) setTimeout(load, POLL_MS);
  else await showResults();
}

// The log arrives as a stream (?follow=1 keeps it open until the attempt ends): each chunk is text.
async function followLog(taskId) {
  following?.abort();
  following = new AbortController();
  const section = document.getElementById("log-section");
  const pre = document.getElementById("log-text");
  const row = taskRows.querySelector(`tr[data-task="${taskId}"]`);
  section.hidden = false;
  document.getElementById("log-h").textContent = `Log of task ${taskId} (${row?.dataset.step ?? ""})`;
  pre.textContent = "";
  try {
    const response = await fetch(`${base}/tasks/${taskId}/log?follow=1`, {
      credentials: "same-origin",
      signal: following.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      showMessage(body?.detail ?? `the server answered ${response.status}`);
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pre.textContent += value;
    }
  } catch (error) {
    if (error.name !== "AbortError") showMessage(`the log failed: ${error.message}`);
  }
}

onAction("log", (taskId) => followLog(taskId), taskRows);
onAction("run-action", async (action) => {
  if (action === "cancel" && !window.confirm(`Cancel run #${runId}?`)) return;
  const run = await attempt(() => api("POST", `${base}/${action}`));
  if (!run) return;
  if (action === "rerun") window.location.assign(`/p/${encodeURIComponent(project)}/runs/${run.id}`);
  else load();
});
initLayout();
load();
