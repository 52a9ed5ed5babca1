import { api, attempt, showMessage } from "../api.js";
import { onAction, onSubmit, pageData } from "../dom.js";
import { initLayout } from "../layout.js";

initLayout();
const { project } = pageData();
const base = `/api/v1/projects/${encodeURIComponent(project)}`;

onSubmit(document.getElementById("project-edit"), async (values) => {
  const saved = await attempt(() => api("PATCH", base, {
    ae_title: values.ae_title, description: values.description ?? "",
  }));
  if (saved) showMessage("Saved.", "notice");
});

onSubmit(document.getElementById("member-form"), async (values) => {
  const path = `${base}/members/${encodeURIComponent(values.username)}`;
  if (await attempt(() => api("PUT", path, { role: values.role }))) window.location.reload();
});

onAction("revoke", async (username) => {
  const path = `${base}/members/${encodeURIComponent(username)}`;
  if ((await attempt(() => api("DELETE", path))) !== undefined) window.location.reload();
});
