// The gallery's and the dashboard's filters, kept in the URL so every view is a link:
//   ?text=liver&f=Modality:CT&f=Modality:MR&r=SliceThickness:0.5:1
// f: FIELD:VALUE (values of one field are alternatives, fields all apply);
// r: FIELD:LOW:HIGH, a histogram bar (low <= value < high).

export function readFilters(search = location.search) {
  const params = new URLSearchParams(search);
  const values = new Map();
  for (const item of params.getAll("f")) {
    const at = item.indexOf(":");
    if (at < 1) continue;
    const field = item.slice(0, at);
    if (!values.has(field)) values.set(field, new Set());
    values.get(field).add(item.slice(at + 1));
  }
  const ranges = params.getAll("r").map((item) => {
    const [field, low, high] = item.split(":");
    return { field, low: Number(low), high: Number(high) };
  }).filter((r) => r.field && Number.isFinite(r.low) && Number.isFinite(r.high));
  return { text: params.get("text") ?? "", values, ranges };
}

export function filtersToSearch({ text, values, ranges }) {
  const params = new URLSearchParams();
  if (text) params.set("text", text);
  for (const [field, set] of values) for (const value of set) params.append("f", `${field}:${value}`);
  for (const r of ranges) params.append("r", `${r.field}:${r.low}:${r.high}`);
  const search = params.toString();
  return search ? `?${search}` : "";
}

// kinds: field -> "number" | "text" | "date" | ...; numbers are compared as numbers.
export function toQuery({ text, values, ranges }, kinds = new Map()) {
  const typed = (field, value) => {
    if (kinds.get(field) !== "number") return value;
    const number = Number(value);
    return Number.isFinite(number) ? number : value;
  };
  const and = [];
  for (const [field, set] of values) {
    const any = [...set].map((value) => ({ field, op: "=", value: typed(field, value) }));
    if (any.length) and.push(any.length === 1 ? any[0] : { or: any });
  }
  for (const r of ranges) {
    and.push({ field: r.field, op: ">=", value: r.low }, { field: r.field, op: "<", value: r.high });
  }
  const query = {};
  if (and.length) query.where = { and };
  if (text.trim()) query.text = text.trim();
  return query;
}

export function describeFilters({ text, values, ranges }) {
  const parts = [];
  if (text) parts.push(`text “${text}”`);
  for (const [field, set] of values) parts.push(`${field} = ${[...set].join(" or ")}`);
  for (const r of ranges) parts.push(`${r.low} ≤ ${r.field} < ${r.high}`);
  return parts.join(", ");
}
