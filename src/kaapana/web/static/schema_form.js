// <kp-schema-fields>: form fields generated from a workflow's parameters JSON Schema (as pydantic
// writes it), with inline messages from the schema's own rules and from the server's answer.
import { h } from "./dom.js";

const NUMBER_KINDS = new Set(["integer", "number"]);

// Follow "$ref": "#/$defs/Name" (enums and nested models live there).
function resolve(schema, root) {
  if (!schema.$ref) return schema;
  const name = schema.$ref.split("/").pop();
  const { $ref, ...rest } = schema;
  return { ...(root.$defs?.[name] ?? {}), ...rest };
}

// `X | None` is anyOf [X, null]: the field is X and may stay empty.
function describeField(name, raw, root, required) {
  let schema = resolve(raw, root);
  let nullable = false;
  const options = schema.anyOf ?? schema.oneOf;
  if (options) {
    const others = options.filter((option) => option.type !== "null");
    nullable = others.length < options.length;
    if (others.length === 1) {
      const { anyOf, oneOf, ...outer } = schema;
      schema = { ...resolve(others[0], root), ...outer };
    }
  }
  let kind = schema.enum ? "enum" : schema.type;
  if (kind === "array" && resolve(schema.items ?? {}, root).type !== "string") kind = "json";
  if (!["enum", "boolean", "integer", "number", "string", "array"].includes(kind)) kind = "json";
  const hasDefault = Object.hasOwn(schema, "default");
  return { name, schema, kind, optional: nullable || hasDefault || !required.has(name) };
}

function helpText(field) {
  const { schema } = field;
  const parts = [];
  if (schema.description) parts.push(schema.description);
  if (schema.minimum !== undefined) parts.push(`minimum ${schema.minimum}`);
  if (schema.maximum !== undefined) parts.push(`maximum ${schema.maximum}`);
  if (schema.default !== undefined && schema.default !== null) {
    parts.push(`default ${JSON.stringify(schema.default)}`);
  }
  if (field.kind === "array") parts.push("one value a line");
  if (field.kind === "json") parts.push("JSON");
  return parts.join("; ");
}

function control(field, id, describedBy) {
  const { schema, kind } = field;
  const common = { id, name: field.name, "aria-describedby": describedBy };
  const initial = schema.default ?? null;
  if (kind === "boolean") return h("input", { ...common, type: "checkbox", checked: initial === true });
  if (kind === "enum") {
    const choices = field.optional ? [["", "(default)"]] : [];
    for (const value of schema.enum) choices.push([String(value), String(value)]);
    const select = h("select", common, choices.map(([value, label]) => h("option", { value }, label)));
    if (initial !== null && !field.optional) select.value = String(initial);
    return select;
  }
  if (NUMBER_KINDS.has(kind)) {
    return h("input", {
      ...common,
      type: "number",
      min: schema.minimum,
      max: schema.maximum,
      step: kind === "integer" ? "1" : "any",
      value: initial ?? undefined,
    });
  }
  if (kind === "string") {
    return h("input", { ...common, maxlength: schema.maxLength, value: initial ?? undefined });
  }
  const text = kind === "array" ? (initial ?? []).join("\n") : initial === null ? "" : JSON.stringify(initial, null, 2);
  return h("textarea", { ...common, rows: kind === "array" ? "3" : "4" }, text);
}

// The field's value, or {error}: the same rules the server applies, said next to the field.
function read(field, element) {
  const { schema, kind } = field;
  if (kind === "boolean") return { value: element.checked };
  if (element.validity?.badInput) return { error: "must be a number" };
  const text = element.value.trim();
  if (text === "") return field.optional ? {} : { error: "is required" };
  if (kind === "enum") return { value: schema.enum.find((option) => String(option) === text) };
  if (NUMBER_KINDS.has(kind)) {
    const value = Number(text);
    if (!Number.isFinite(value)) return { error: "must be a number" };
    if (kind === "integer" && !Number.isInteger(value)) return { error: "must be a whole number" };
    if (schema.minimum !== undefined && value < schema.minimum) return { error: `must be at least ${schema.minimum}` };
    if (schema.maximum !== undefined && value > schema.maximum) return { error: `must be at most ${schema.maximum}` };
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return { error: `must be more than ${schema.exclusiveMinimum}` };
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) return { error: `must be less than ${schema.exclusiveMaximum}` };
    return { value };
  }
  if (kind === "string") {
    if (schema.minLength !== undefined && text.length < schema.minLength) return { error: `must have at least ${schema.minLength} characters` };
    if (schema.maxLength !== undefined && text.length > schema.maxLength) return { error: `must have at most ${schema.maxLength} characters` };
    if (schema.pattern && !new RegExp(schema.pattern, "u").test(text)) return { error: `must match ${schema.pattern}` };
    return { value: element.value };
  }
  if (kind === "array") {
    const value = text.split("\n").map((line) => line.trim()).filter(Boolean);
    if (schema.minItems !== undefined && value.length < schema.minItems) return { error: `needs at least ${schema.minItems} values` };
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return { error: `takes at most ${schema.maxItems} values` };
    return { value };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error: `invalid JSON: ${error.message}` };
  }
}

class SchemaFields extends HTMLElement {
  render(root) {
    const required = new Set(root.required ?? []);
    this.fields = Object.entries(root.properties ?? {}).map(([name, raw]) => describeField(name, raw, root, required));
    this.elements = new Map();
    this.errors = new Map();
    const rows = this.fields.map((field) => {
      const id = `param-${field.name}`;
      const help = h("span", { class: "help", id: `${id}-help` }, helpText(field));
      const error = h("span", { class: "field-error", id: `${id}-error`, role: "alert" });
      const element = control(field, id, `${id}-help ${id}-error`);
      element.addEventListener("change", () => this.check(field));
      element.addEventListener("blur", () => this.check(field));
      // While a message shows, it follows the typing, so it goes away as soon as the value is right.
      element.addEventListener("input", () => error.textContent && this.check(field));
      this.elements.set(field.name, element);
      this.errors.set(field.name, error);
      const title = field.schema.title ?? field.name;
      if (field.kind === "boolean") {
        return h("div", { class: "field" }, h("label", { class: "check" }, element, ` ${title}`), help, error);
      }
      const label = h("label", { for: id }, title, field.optional ? "" : " (required)");
      return h("div", { class: "field" }, label, element, help, error);
    });
    this.replaceChildren(...(rows.length ? rows : [h("p", { class: "empty" }, "This workflow takes no parameters.")]));
  }

  setError(name, message) {
    const error = this.errors.get(name);
    if (!error) return false;
    error.textContent = message ?? "";
    const element = this.elements.get(name);
    if (message) element.setAttribute("aria-invalid", "true");
    else element.removeAttribute("aria-invalid");
    return true;
  }

  check(field) {
    const result = read(field, this.elements.get(field.name));
    this.setError(field.name, result.error);
    return result;
  }

  // {values} when every field is valid, else null with the messages shown and the first focused.
  values() {
    const values = {};
    let first = null;
    for (const field of this.fields) {
      const result = this.check(field);
      if (result.error) first ??= this.elements.get(field.name);
      else if (result.value !== undefined) values[field.name] = result.value;
    }
    first?.focus();
    return first ? null : values;
  }
}

customElements.define("kp-schema-fields", SchemaFields);
