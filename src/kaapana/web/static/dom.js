// Small DOM helpers. Data always becomes text nodes (textContent), never markup.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    element.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return element;
}

// The JSON the server handed over in <script type="application/json" id="kp-data">.
export function pageData() {
  const script = document.getElementById("kp-data");
  return script ? JSON.parse(script.textContent) : {};
}

// A form's fields as an object: checkboxes as booleans, number inputs as numbers,
// empty optional text as null.
export function formValues(form) {
  const values = {};
  for (const field of form.elements) {
    if (!field.name) continue;
    if (field.type === "checkbox") values[field.name] = field.checked;
    else if (field.type === "number") values[field.name] = field.value === "" ? null : Number(field.value);
    else values[field.name] = field.value === "" && !field.required ? null : field.value;
  }
  return values;
}

// Handle a form's submit with an async function; the submit button is disabled meanwhile.
export function onSubmit(form, handler) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await handler(formValues(form), form);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
}

// Run handler(value, button) for clicks on buttons carrying data-<name>.
export function onAction(name, handler, root = document) {
  root.addEventListener("click", (event) => {
    const button = event.target.closest(`[data-${name}]`);
    if (button) handler(button.dataset[name.replace(/-./g, (m) => m[1].toUpperCase())], button);
  });
}
