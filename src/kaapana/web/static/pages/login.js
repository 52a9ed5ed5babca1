import { api, ApiError } from "../api.js";
import { onSubmit, pageData } from "../dom.js";

const { next } = pageData();
const message = document.getElementById("login-error");

onSubmit(document.getElementById("login-form"), async (values) => {
  message.hidden = true;
  try {
    await api("POST", "/api/v1/auth/login", { username: values.username, password: values.password });
  } catch (error) {
    message.textContent = error instanceof ApiError ? error.message : `login failed: ${error.message}`;
    message.hidden = false;
    return;
  }
  // `next` was checked by the server to be a path on this site.
  window.location.assign(next);
});
