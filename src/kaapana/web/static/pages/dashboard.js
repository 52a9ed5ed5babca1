// Dashboard: the counts and charts of the project's series (of the URL's filters, if any),
// drawn as SVG from /api/v1/facets; a bar links to the gallery with its filter added.
import { api, attempt } from "../api.js";
import { describeFilters, filtersToSearch, readFilters, toQuery } from "../catalog_query.js";
import { pageData } from "../dom.js";
import { initLayout } from "../layout.js";

const { project } = pageData();
const SVG = "http://www.w3.org/2000/svg";
const CHARTS = [
  { title: "Modality", spec: { field: "Modality", limit: 20 } },
  { title: "Body part", spec: { field: "BodyPartExamined", limit: 20 } },
  { title: "Study date by month", spec: { field: "StudyDate", type: "date_histogram", interval: "month" } },
  { title: "Slice thickness (mm)", spec: { field: "SliceThickness", type: "histogram", bins: 12 } },
];
const BAR = 22;
const GAP = 6;
const LABEL = 150;
const WIDTH = 560;

function svg(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

// What clicking a bucket adds to the gallery's filters.
function bucketFilter(filters, facet, bucket) {
  const values = new Map([...filters.values].map(([f, s]) => [f, new Set(s)]));
  if (facet.type === "histogram") {
    return { ...filters, values, ranges: [...filters.ranges, { field: facet.field, low: bucket.low, high: bucket.high }] };
  }
  values.set(facet.field, new Set([String(bucket.value ?? bucket.period)]));
  return { ...filters, values };
}

function bucketLabel(facet, bucket) {
  if (facet.type === "histogram") return `${bucket.low} – ${bucket.high}`;
  return String(bucket.value ?? bucket.period) || "(empty)";
}

function chart(title, facet, filters) {
  const figure = document.createElement("figure");
  figure.className = "chart card";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption);
  if (!facet.buckets.length) {
    const none = document.createElement("p");
    none.className = "empty";
    none.textContent = "No values.";
    figure.append(none);
    return figure;
  }
  const most = Math.max(...facet.buckets.map((b) => b.count));
  const height = facet.buckets.length * (BAR + GAP);
  const drawing = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height, role: "list", "aria-label": title,
  });
  const room = WIDTH - LABEL - 50;
  facet.buckets.forEach((bucket, i) => {
    const y = i * (BAR + GAP);
    const label = bucketLabel(facet, bucket);
    const link = svg("a", {
      href: `/p/${encodeURIComponent(project)}/gallery${filtersToSearch(bucketFilter(filters, facet, bucket))}`,
      class: "bar", role: "listitem", "data-label": label, "data-count": bucket.count,
      "aria-label": `${label}: ${bucket.count} series`,
    });
    link.append(
      svg("text", { x: LABEL - 8, y: y + BAR * 0.7, "text-anchor": "end" }, label),
      svg("rect", { x: LABEL, y, width: Math.max(2, (bucket.count / most) * room), height: BAR, rx: 2 }),
      svg("text", { x: LABEL + (bucket.count / most) * room + 6, y: y + BAR * 0.7, class: "value" }, bucket.count),
    );
    drawing.append(link);
  });
  figure.append(drawing);
  return figure;
}

async function draw() {
  const filters = readFilters();
  const described = describeFilters(filters);
  document.getElementById("dashboard-filter").textContent = described ? `Series with ${described}.` : "";
  // Numeric fields compare as numbers: the kinds come from field discovery.
  const fields = await attempt(() => api("GET", `/api/v1/fields?${new URLSearchParams({ project })}`));
  const kinds = new Map((fields ?? []).map((f) => [f.field, f.kind]));
  const body = { project, query: toQuery(filters, kinds), facets: CHARTS.map((c) => c.spec) };
  const answer = await attempt(() => api("POST", "/api/v1/facets", body));
  if (!answer) return;
  for (const element of document.querySelectorAll("[data-total]")) {
    element.textContent = answer.counts[element.dataset.total].toLocaleString("en");
  }
  document.getElementById("charts").replaceChildren(
    ...CHARTS.map((c, i) => chart(c.title, answer.facets[i], filters)));
}

initLayout();
draw();
