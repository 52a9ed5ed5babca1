import { api, attempt } from "../api.js";
import { onSubmit } from "../dom.js";
import { initLayout } from "../layout.js";

initLayout();

onSubmit(document.getElementById("project-form"), async (values) => {
  const created = await attempt(() => api("POST", "/api/v1/projects", {
    name: values.name, ae_title: values.ae_title, description: values.description ?? "",
  }));
  if (created) window.location.assign(`/admin/projects/${encodeURIComponent(created.name)}`);
});
