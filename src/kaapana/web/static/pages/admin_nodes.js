import { api, attempt } from "../api.js";
import { onAction, onSubmit } from "../dom.js";
import { initLayout } from "../layout.js";

initLayout();
const nodePath = (name) => `/api/v1/nodes/${encodeURIComponent(name)}`;

onSubmit(document.getElementById("node-form"), async (values) => {
  const created = await attempt(() => api("POST", "/api/v1/nodes", {
    ...values, description: values.description ?? "",
  }));
  if (created) window.location.reload();
});

onAction("echo", async (name) => {
  const output = document.querySelector(`output[data-result="${CSS.escape(name)}"]`);
  output.textContent = "echoing…";
  const result = await attempt(() => api("POST", `${nodePath(name)}/echo`));
  output.textContent = result ? `answered in ${result.milliseconds} ms` : "no answer";
});

onAction("remove", async (name) => {
  if (!window.confirm(`Remove node ${name}?`)) return;
  if ((await attempt(() => api("DELETE", nodePath(name)))) !== undefined) window.location.reload();
});
