// The one way pages talk to /api/v1: JSON in and out, the CSRF token on every change,
// and errors turned into ApiError with the server's own message.

const CSRF_COOKIE = "kaapana_csrf";
const SAFE_METHODS = new Set(["GET", "HEAD"]);

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body; // the whole error body, for pages that place field errors themselves
  }
}

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(value.join("="));
  }
  return null;
}

// The API's one error shape: {"error": code, "detail": text naming the field and value}.
function describe(status, body) {
  return body && typeof body.detail === "string" ? body.detail : `the server answered ${status}`;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE_METHODS.has(method)) {
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, describe(response.status, data), data);
  return data;
}

// Show an error (or any message) in the page's live region; text only, never markup.
export function showMessage(text, kind = "error") {
  const region = document.getElementById("kp-messages");
  if (!region) return;
  const item = document.createElement("p");
  item.className = kind;
  item.textContent = text;
  region.replaceChildren(item);
}

// Run an action; an ApiError (or a network failure) becomes a message instead of a crash.
export async function attempt(action) {
  try {
    return await action();
  } catch (error) {
    showMessage(error instanceof ApiError ? error.message : `request failed: ${error.message}`);
    return undefined;
  }
}
