// The execution form: input (dataset, series, catalog query) and parameters from the JSON Schema;
// POST /api/v1/runs, then the run's page. ?series= and ?dataset= arrive preselected.
import { api, ApiError, attempt, showMessage } from "../api.js";
import { h, pageData } from "../dom.js";
import { initLayout } from "../layout.js";
import "../schema_form.js";

const data = pageData();
const form = document.getElementById("run-form");

function chosenInput() {
  return form.querySelector("input[name=input]:checked").value;
}

function showInput(kind) {
  form.querySelector(`input[name=input][value=${kind}]`).checked = true;
  for (const part of form.querySelectorAll("[data-input]")) part.hidden = part.dataset.input !== kind;
}

async function loadDatasets() {
  const select = document.getElementById("input-dataset");
  const path = `/api/v1/projects/${encodeURIComponent(data.project)}/datasets`;
  const datasets = (await attempt(() => api("GET", path))) ?? [];
  const options = datasets.map((d) => h("option", { value: d.name }, d.name));
  if (data.dataset && !datasets.some((d) => d.name === data.dataset)) {
    options.push(h("option", { value: data.dataset }, `${data.dataset} (not found)`));
  }
  select.replaceChildren(h("option", { value: "" }, "choose a dataset"), ...options);
  select.value = data.dataset ?? "";
}

// The run's input as the API takes it, or null with the message shown under the input.
function readInput() {
  const error = document.getElementById("input-error");
  error.textContent = "";
  const kind = chosenInput();
  let input = null;
  if (kind === "dataset") {
    const name = document.getElementById("input-dataset").value;
    if (name) input = { dataset: name };
    else error.textContent = "Choose a dataset.";
  } else if (kind === "series") {
    const series = document.getElementById("input-series").value.split(/[\s,]+/).filter(Boolean);
    if (series.length) input = { series };
    else error.textContent = "Enter at least one Series Instance UID.";
  } else {
    try {
      const query = JSON.parse(document.getElementById("input-query").value);
      if (query && typeof query === "object" && !Array.isArray(query)) input = { query };
      else error.textContent = "The query must be a JSON object.";
    } catch (problem) {
      error.textContent = `The query is not JSON: ${problem.message}`;
    }
  }
  return input;
}

// The server names wrong parameters in its message (400) or in "fields" (422): put each by its field.
function placeServerErrors(error, fields) {
  let placed = false;
  for (const item of error.body?.fields ?? []) {
    const [where, group, name] = item.location;
    if (where === "body" && group === "params" && name) placed = fields.setError(name, item.message) || placed;
  }
  const match = /^invalid parameters of workflow .*?: (.*)$/s.exec(error.message);
  if (match) {
    for (const problem of match[1].split("; ")) {
      const named = /^([A-Za-z_][\w]*)[\w.]*: (.*)$/s.exec(problem);
      if (named) placed = fields.setError(named[1], named[2]) || placed;
    }
  }
  if (!placed) document.getElementById("input-error").textContent = error.message;
}

function federated() {
  return Boolean(data.plan) && form.querySelector("input[name=where]:checked").value === "sites";
}

function showWhere() {
  const sites = federated();
  form.querySelector("[data-where=sites]").hidden = !sites;
  form.querySelector("fieldset.inputs").hidden = sites;
}

// The federated run as POST /api/v1/federation/runs takes it, or null with the message shown.
function readFederated() {
  const error = document.getElementById("fed-error");
  const sites = [...form.querySelectorAll("input[name=site]:checked")].map((box) => box.value);
  const dataset = document.getElementById("fed-dataset").value.trim();
  const number = (id) => (document.getElementById(id).value === "" ? null : Number(document.getElementById(id).value));
  const run = {
    workflow: data.plan, dataset, sites, params: {},
    rounds: number("fed-rounds"), min_sites: number("fed-min-sites"), site_timeout: number("fed-timeout") ?? 3600,
  };
  if (!sites.length) error.textContent = "Choose at least one site.";
  else if (!dataset) error.textContent = "Name the dataset every site exposes.";
  else if (run.min_sites !== null && run.min_sites > sites.length) error.textContent = `At most ${sites.length} sites can deliver.`;
  else {
    error.textContent = "";
    return run;
  }
  return null;
}

async function submitFederated(fields) {
  const run = readFederated();
  const params = fields.values();
  if (!run || !params) return;
  try {
    const started = await api("POST", "/api/v1/federation/runs", { ...run, params });
    window.location.assign(`/sites/runs/${started.id}`);
  } catch (error) {
    if (error instanceof ApiError) document.getElementById("fed-error").textContent = error.message;
    showMessage(error.message);
  }
}

async function submit(fields) {
  if (federated()) return submitFederated(fields);
  const input = readInput();
  const params = fields.values();
  if (!input || !params) return;
  const body = { workflow: data.workflow, project: data.project, params, ...input };
  try {
    const run = await api("POST", "/api/v1/runs", body);
    window.location.assign(`/p/${encodeURIComponent(data.project)}/runs/${run.id}`);
  } catch (error) {
    if (error instanceof ApiError) placeServerErrors(error, fields);
    showMessage(error.message);
  }
}

if (form) {
  const fields = document.getElementById("params");
  fields.render(data.schema);
  for (const radio of form.querySelectorAll("input[name=input]")) {
    radio.addEventListener("change", () => showInput(radio.value));
  }
  if (data.plan) {
    for (const radio of form.querySelectorAll("input[name=where]")) radio.addEventListener("change", showWhere);
    for (const field of form.querySelectorAll("[data-where=sites] input")) field.addEventListener("input", readFederated);
    showWhere();
  }
  for (const id of ["input-dataset", "input-series", "input-query"]) {
    document.getElementById(id).addEventListener("change", readInput);
  }
  if (data.series.length) {
    document.getElementById("input-series").value = data.series.join("\n");
    showInput("series");
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await submit(fields);
    } finally {
      button.disabled = false;
    }
  });
  loadDatasets();
}
initLayout();
