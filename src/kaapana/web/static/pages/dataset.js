// A dataset's page: rename, describe and delete it through the REST API.
import { api, attempt, showMessage } from "../api.js";
import { onSubmit, pageData } from "../dom.js";
import { initLayout } from "../layout.js";

initLayout();
const { project, dataset } = pageData();
const projectUrl = `/p/${encodeURIComponent(project)}`;
const path = `/api/v1/projects/${encodeURIComponent(project)}/datasets/${encodeURIComponent(dataset)}`;
const form = document.getElementById("dataset-form");

if (form) {
  onSubmit(form, async (values) => {
    const saved = await attempt(() => api("PATCH", path, {
      name: values.name, description: values.description ?? "",
    }));
    if (!saved) return;
    if (saved.name !== dataset) {
      window.location.assign(`${projectUrl}/datasets/${encodeURIComponent(saved.name)}`);
      return;
    }
    document.getElementById("dataset-description").textContent = saved.description || "–";
    showMessage("Saved.", "notice");
  });
  document.getElementById("dataset-delete").addEventListener("click", async () => {
    const sure = window.confirm(`Delete dataset ${dataset}? Its series stay in the project.`);
    if (sure && (await attempt(() => api("DELETE", path))) !== undefined) {
      window.location.assign(`${projectUrl}/datasets`);
    }
  });
}
