import { api, attempt } from "../api.js";
import { onAction, onSubmit } from "../dom.js";
import { initLayout } from "../layout.js";

initLayout();

onSubmit(document.getElementById("token-form"), async (values) => {
  const created = await attempt(() => api("POST", "/api/v1/tokens", {
    name: values.name,
    projects: values.project ? [values.project] : null,
    can_write: values.can_write,
    expires_in_days: values.expires_in_days,
  }));
  if (!created) return;
  document.getElementById("token-secret-value").textContent = created.token;
  document.getElementById("token-secret").hidden = false;
});

onAction("revoke", async (id) => {
  if (!window.confirm("Revoke this token? Scripts using it stop working.")) return;
  if ((await attempt(() => api("DELETE", `/api/v1/tokens/${id}`))) !== undefined) {
    window.location.reload();
  }
});
