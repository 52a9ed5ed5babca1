// The frame of every signed-in page: log out, and close the project menu with Escape.
import { api, attempt } from "./api.js";

export function initLayout() {
  const logout = document.getElementById("kp-logout");
  logout?.addEventListener("click", async () => {
    await attempt(() => api("POST", "/api/v1/auth/logout"));
    window.location.assign("/login");
  });
  const switcher = document.querySelector("details.switcher");
  switcher?.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && switcher.open) {
      switcher.open = false;
      switcher.querySelector("summary").focus();
    }
  });
}
