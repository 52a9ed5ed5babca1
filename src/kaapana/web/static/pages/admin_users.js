import { api, attempt, showMessage } from "../api.js";
import { onAction, onSubmit } from "../dom.js";
import { initLayout } from "../layout.js";

initLayout();
const userPath = (name) => `/api/v1/users/${encodeURIComponent(name)}`;

onSubmit(document.getElementById("user-form"), async (values) => {
  const created = await attempt(() => api("POST", "/api/v1/users", {
    username: values.username,
    display_name: values.display_name ?? "",
    password: values.password,
    is_admin: values.is_admin,
  }));
  if (created) window.location.reload();
});

for (const form of document.querySelectorAll("form.grant")) {
  onSubmit(form, async (values) => {
    const path = `/api/v1/projects/${encodeURIComponent(values.project)}/members/`
      + encodeURIComponent(form.dataset.user);
    if (await attempt(() => api("PUT", path, { role: values.role }))) window.location.reload();
  });
}

document.addEventListener("change", async (event) => {
  const box = event.target.closest("input[data-flag]");
  if (!box) return;
  const user = box.closest("tr").dataset.user;
  const changed = await attempt(() => api("PATCH", userPath(user), { [box.dataset.flag]: box.checked }));
  if (changed) showMessage(`User ${user} updated.`, "notice");
  else box.checked = !box.checked;
});

const dialog = document.getElementById("reset-dialog");
const resetForm = document.getElementById("reset-form");
onAction("reset", (user) => {
  dialog.dataset.user = user;
  document.getElementById("reset-user").textContent = user;
  resetForm.reset();
  dialog.showModal();
});
dialog.addEventListener("close", async () => {
  if (dialog.returnValue !== "ok") return;
  const user = dialog.dataset.user;
  const password = resetForm.elements.password.value;
  const changed = await attempt(() => api("PATCH", userPath(user), { password }));
  if (changed) showMessage(`Password of ${user} reset; their sessions ended.`, "notice");
});
