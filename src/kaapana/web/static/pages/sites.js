// The sites page: enrol peers, decide pending federated jobs, cancel jobs and runs, edit the data owner's
// policies. Every change goes through /api/v1/federation; the page then reloads what it shows.
import { api, attempt } from "../api.js";
import { formValues, onAction, onSubmit } from "../dom.js";
import { initLayout } from "../layout.js";

initLayout();
const base = "/api/v1/federation";
const part = encodeURIComponent;

async function change(method, path, body) {
  if ((await attempt(() => api(method, path, body))) !== undefined) window.location.reload();
}

onAction("approve", (job) => change("POST", `${base}/jobs/${part(job)}/approve`));

onAction("deny", (job) => {
  const reason = document.querySelector(`input[data-reason="${CSS.escape(job)}"]`).value;
  return change("POST", `${base}/jobs/${part(job)}/deny`, { reason });
});

onAction("cancel-job", (job) => {
  if (window.confirm(`Cancel federated job ${job}?`)) change("POST", `${base}/jobs/${part(job)}/cancel`, {});
});

onAction("cancel-run", (run) => {
  if (window.confirm(`Cancel federated run #${run}?`)) change("POST", `${base}/runs/${part(run)}/cancel`);
});

function policyBody(values, definitionHash) {
  return {
    approval: values.approval,
    definition_hash: definitionHash,
    max_output_bytes: values.max_output_bytes,
    allow_pixel_data: values.allow_pixel_data,
    share_logs: values.share_logs,
  };
}

// An allowed workflow keeps its pinned hash when its settings change; "Pin" takes the installed one.
for (const form of document.querySelectorAll("form.policy")) {
  const path = `${base}/policies/${part(form.dataset.policy)}`;
  onSubmit(form, (values) => change("PUT", path, policyBody(values, form.dataset.hash)));
  form.querySelector("[data-repin]")?.addEventListener("click", (event) => {
    change("PUT", path, policyBody(formValues(form), event.currentTarget.dataset.repin));
  });
}

onAction("revoke", (workflow) => {
  if (window.confirm(`Revoke ${workflow}? Its federated jobs are refused from now on.`)) {
    change("DELETE", `${base}/policies/${part(workflow)}`);
  }
});

const allowForm = document.getElementById("allow-form");
if (allowForm) {
  onSubmit(allowForm, (values, form) => {
    const pinned = form.elements.workflow.selectedOptions[0].dataset.hash;
    return change("PUT", `${base}/policies/${part(values.workflow)}`, policyBody(values, pinned));
  });
}

const exposeForm = document.getElementById("expose-form");
if (exposeForm) {
  onSubmit(exposeForm, (values, form) => change("POST", `${base}/datasets`, {
    project: form.elements.dataset.selectedOptions[0].dataset.project,
    dataset: values.dataset,
    name: values.name,
  }));
}

onAction("unexpose", (name) => {
  if (window.confirm(`Stop offering ${name} to federated jobs?`)) change("DELETE", `${base}/datasets/${part(name)}`);
});

onAction("remove-peer", (name) => {
  if (window.confirm(`Remove ${name}? Its token stops working at once.`)) change("DELETE", `${base}/sites/${part(name)}`);
});

// A new participant's enrolment secret is shown once, here, instead of reloading the page.
const participantForm = document.getElementById("participant-form");
if (participantForm) {
  onSubmit(participantForm, async (values) => {
    const created = await attempt(() => api("POST", `${base}/sites`, { name: values.name, role: "participant" }));
    if (created === undefined) return;
    document.getElementById("enrolled-site").textContent = created.site.name;
    document.getElementById("enrolment-secret").textContent = created.secret;
    document.getElementById("enrolment").hidden = false;
    participantForm.reset();
  });
}

const orchestratorForm = document.getElementById("orchestrator-form");
if (orchestratorForm) {
  onSubmit(orchestratorForm, (values) => change("POST", `${base}/sites`, { ...values, role: "orchestrator", pinned_sha256: values.pinned_sha256 ?? "" }));
}
