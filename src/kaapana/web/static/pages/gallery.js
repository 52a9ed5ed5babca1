// Gallery: the project's series as cards, loaded page by page while scrolling (cursor paging of
// /api/v1/search), filtered from a sidebar of facets and fields, selected with click, shift-click
// and "select all results", tagged with the keys 1..9, and collected into datasets.
import { api, attempt, csrfToken, showMessage } from "../api.js";
import { describeFilters, filtersToSearch, readFilters, toQuery } from "../catalog_query.js";
import { h, pageData } from "../dom.js";
import { initLayout } from "../layout.js";

const { project, canWrite, canDelete, ohif } = pageData();
const PAGE_SIZE = 40;
const SELECT_ALL_PAGE = 1000;
const FACETS = [
  { field: "Modality", label: "Modality", spec: { field: "Modality", limit: 20 } },
  { field: "BodyPartExamined", label: "Body part", spec: { field: "BodyPartExamined", limit: 20 } },
  { field: "tags", label: "Tags", spec: { field: "tags", limit: 20 } },
  { field: "StudyDate", label: "Study year", spec: { field: "StudyDate", type: "date_histogram", interval: "year" } },
];
const GROUP_SORT = ["PatientID", "StudyDate", "StudyInstanceUID", "SeriesNumber"].map((field) => ({ field }));
const DEFAULT_TAG_KEYS = ["reviewed", "excluded", "train", "test", "validation", "", "", "", ""];
const TAG_KEYS_STORAGE = `kaapana.tag-keys.${project}`;

const cardsBox = document.getElementById("cards");
const sentinel = document.getElementById("sentinel");
const state = {
  filters: readFilters(),
  kinds: new Map(),
  cursor: null,
  more: true,
  loading: null,
  generation: 0,
  order: [],
  cards: new Map(), // uid -> {hit, element}
  selected: new Set(),
  anchor: null,
  lastStudy: null,
};
const grouped = () => new URLSearchParams(location.search).get("group") === "1";
const projectPath = `/api/v1/projects/${encodeURIComponent(project)}`;

// --- the URL is the state -------------------------------------------------------------------

function navigate(filters, { group = grouped() } = {}) {
  const search = new URLSearchParams(filtersToSearch(filters));
  if (group) search.set("group", "1");
  const text = search.toString();
  history.pushState(null, "", text ? `?${text}` : location.pathname);
  state.filters = filters;
  refresh();
}

function withValue(field, value, on) {
  const values = new Map([...state.filters.values].map(([f, s]) => [f, new Set(s)]));
  if (!values.has(field)) values.set(field, new Set());
  if (on) values.get(field).add(value);
  else values.get(field).delete(value);
  if (!values.get(field).size) values.delete(field);
  return { ...state.filters, values };
}

function query() {
  const q = toQuery(state.filters, state.kinds);
  if (grouped()) q.sort = GROUP_SORT;
  return q;
}

// --- facets sidebar -------------------------------------------------------------------------

async function facets(filters, specs) {
  const body = { project, query: toQuery(filters, state.kinds), facets: specs };
  return api("POST", "/api/v1/facets", body);
}

async function renderFacets() {
  const { filters } = state;
  const unfiltered = FACETS.filter((f) => !filters.values.has(f.field));
  const requests = [facets(filters, unfiltered.map((f) => f.spec))];
  // A filtered field counts without its own filter, so its other values stay selectable.
  for (const facet of FACETS.filter((f) => filters.values.has(f.field))) {
    const values = new Map(filters.values);
    values.delete(facet.field);
    requests.push(facets({ ...filters, values }, [facet.spec]).then((a) => ({ ...a, own: true })));
  }
  const generation = state.generation;
  const answers = await attempt(() => Promise.all(requests));
  if (!answers || generation !== state.generation) return; // the filters changed meanwhile
  const [main] = answers;
  document.getElementById("result-count").textContent = `${main.counts.series} series`;
  const byField = new Map();
  for (const answer of answers) for (const facet of answer.facets) byField.set(facet.field, facet);
  const box = document.getElementById("facets");
  box.replaceChildren(...FACETS.map(({ field, label }) => {
    const facet = byField.get(field);
    const chosen = filters.values.get(field) ?? new Set();
    const buckets = (facet?.buckets ?? []).map((b) => ({ value: String(b.value ?? b.period), count: b.count }));
    for (const value of chosen) if (!buckets.some((b) => b.value === value)) buckets.push({ value, count: 0 });
    return h("fieldset", { class: "facet", "data-field": field },
      h("legend", {}, label),
      buckets.length ? buckets.map(({ value, count }) => {
        const input = h("input", { type: "checkbox", "data-value": value, checked: chosen.has(value) });
        input.addEventListener("change", () => navigate(withValue(field, value, input.checked)));
        return h("label", { class: "check" }, input, ` ${value || "(empty)"} `, h("span", { class: "hint" }, `(${count})`));
      }) : h("p", { class: "empty" }, "none"));
  }));
  const active = document.getElementById("active-filters");
  active.replaceChildren(...[...filters.values].flatMap(([field, set]) => [...set].map((value) =>
    removable(`${field} = ${value}`, () => withValue(field, value, false)))),
  ...filters.ranges.map((r, i) => removable(`${r.low} ≤ ${r.field} < ${r.high}`,
    () => ({ ...filters, ranges: filters.ranges.filter((_, j) => j !== i) }))));
}

function removable(text, without) {
  const button = h("button", { type: "button", class: "link", "aria-label": `Remove filter ${text}` }, "×");
  button.addEventListener("click", () => navigate(without()));
  return h("li", {}, `${text} `, button);
}

async function setUpFieldFilter() {
  const fields = await attempt(() => api("GET", `/api/v1/fields?${new URLSearchParams({ project })}`));
  if (!fields) return;
  for (const f of fields) state.kinds.set(f.field, f.kind);
  document.getElementById("field-list").replaceChildren(
    ...fields.map((f) => h("option", { value: f.field }, `${f.field} (${f.series})`)));
  const fieldInput = document.getElementById("filter-field");
  const valueInput = document.getElementById("filter-value");
  let timer;
  const suggest = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!state.kinds.has(fieldInput.value)) return;
      const params = new URLSearchParams({ project, prefix: valueInput.value, limit: "20" });
      const path = `/api/v1/fields/${encodeURIComponent(fieldInput.value)}/values?${params}`;
      const values = await attempt(() => api("GET", path));
      if (values) document.getElementById("value-list").replaceChildren(
        ...values.map((v) => h("option", { value: String(v.value) }, `${v.value} (${v.count})`)));
    }, 150);
  };
  fieldInput.addEventListener("change", suggest);
  valueInput.addEventListener("input", suggest);
  valueInput.addEventListener("focus", suggest);
  document.getElementById("field-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!state.kinds.has(fieldInput.value)) {
      showMessage(`unknown field '${fieldInput.value}': choose one this project's series have`);
      return;
    }
    navigate(withValue(fieldInput.value, valueInput.value, true));
    valueInput.value = "";
  });
  const text = document.getElementById("search-text");
  text.value = state.filters.text;
  document.getElementById("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    navigate({ ...state.filters, text: text.value.trim() });
  });
}

// --- cards ----------------------------------------------------------------------------------

const validationObserver = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    validationObserver.unobserve(entry.target);
    loadValidation(entry.target);
  }
});

async function loadValidation(card) {
  const badge = card.querySelector(".validation");
  try {
    const result = await api("GET", `/api/v1/series/${encodeURIComponent(card.dataset.uid)}/validation`);
    badge.textContent = result.status;
    badge.className = `badge validation validation-${result.status}`;
    const problems = [...result.errors, ...result.warnings].slice(0, 5);
    badge.title = problems.join("\n") || "no problems found";
  } catch {
    badge.textContent = "not validated";
  }
}

function tagList(tags) {
  return h("ul", { class: "tags plain", "aria-label": "Tags" }, tags.map((t) => h("li", { class: "badge" }, t)));
}

/** The study in the OHIF Viewer, through the project's DICOMweb data source (see web.md). */
function ohifStudyUrl(studyInstanceUid) {
  return `/ohif/viewer/${encodeURIComponent(project)}?StudyInstanceUIDs=${encodeURIComponent(studyInstanceUid)}`;
}

function card(hit) {
  const uid = hit.series_instance_uid;
  const element = h("article", {
    class: "series-card", tabindex: "0", role: "option", "aria-selected": "false", "data-uid": uid,
  },
  h("img", {
    src: `/api/v1/series/${encodeURIComponent(uid)}/thumbnail`, alt: `Thumbnail of ${hit.series_description || uid}`,
    loading: "lazy", width: "160", height: "160", draggable: "false",
  }),
  h("div", { class: "card-text" },
    h("strong", { class: "patient" }, hit.patient_name || hit.patient_id || "(no name)"),
    h("span", {}, `${hit.study_date || "no date"} · `, h("span", { class: "modality" }, hit.modality),
      ` · ${hit.number_of_series_related_instances} instances`),
    h("span", { class: "description" }, hit.series_description || "(no description)"),
    h("span", { class: "badge validation" }, "…"),
    tagList(hit.tags),
    h("a", { class: "open", href: `/p/${encodeURIComponent(project)}/series/${encodeURIComponent(uid)}` }, "Open viewer"),
    ohif ? [h("a", { class: "open", href: ohifStudyUrl(hit.study_instance_uid) }, "Open in OHIF")] : []));
  state.cards.set(uid, { hit, element });
  validationObserver.observe(element);
  return element;
}

function groupHeader(hit) {
  return h("h2", { class: "group" }, `${hit.patient_name || hit.patient_id} · ${hit.patient_id} · study ${hit.study_date || "no date"} ${hit.study_description}`);
}

async function loadPage() {
  const generation = state.generation;
  const body = { project, query: query(), limit: PAGE_SIZE, cursor: state.cursor };
  const page = await attempt(() => api("POST", "/api/v1/search", body));
  if (generation !== state.generation) return;
  if (!page) { state.more = false; return; }
  const nodes = [];
  for (const hit of page.items) {
    if (grouped() && hit.study_instance_uid !== state.lastStudy) nodes.push(groupHeader(hit));
    state.lastStudy = hit.study_instance_uid;
    state.order.push(hit.series_instance_uid);
    const element = card(hit);
    if (state.selected.has(hit.series_instance_uid)) element.setAttribute("aria-selected", "true");
    nodes.push(element);
  }
  cardsBox.append(...nodes);
  state.cursor = page.next_cursor;
  state.more = page.next_cursor !== null;
  sentinel.textContent = state.more ? "Loading…" : state.order.length ? "All series shown." : "No series match.";
}

function sentinelVisible() {
  return sentinel.getBoundingClientRect().top < window.innerHeight + 200;
}

async function loadWhileVisible() {
  if (state.loading) return state.loading;
  state.loading = (async () => {
    while (state.more && sentinelVisible()) await loadPage();
  })();
  try { await state.loading; } finally { state.loading = null; }
}

new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadWhileVisible();
}, { rootMargin: "200px" }).observe(sentinel);

async function refresh() {
  state.generation += 1;
  state.cursor = null;
  state.more = true;
  state.order = [];
  state.cards.clear();
  state.lastStudy = null;
  state.anchor = null;
  cardsBox.replaceChildren();
  document.getElementById("group-toggle").checked = grouped();
  const described = describeFilters(state.filters);
  document.title = `Gallery${described ? ` (${described})` : ""} · kaapana`;
  await state.loading;
  renderFacets();
  loadWhileVisible();
}

// --- selection ------------------------------------------------------------------------------

function showSelection() {
  for (const [uid, { element }] of state.cards) {
    element.setAttribute("aria-selected", String(state.selected.has(uid)));
  }
  document.getElementById("selection-count").textContent = `${state.selected.size} selected`;
}

function toggle(uid, range) {
  const index = state.order.indexOf(uid);
  if (range && state.anchor !== null) {
    const [from, to] = [Math.min(state.anchor, index), Math.max(state.anchor, index)];
    for (const u of state.order.slice(from, to + 1)) state.selected.add(u);
  } else if (state.selected.has(uid)) {
    state.selected.delete(uid);
  } else {
    state.selected.add(uid);
  }
  state.anchor = index;
  showSelection();
}

cardsBox.addEventListener("click", (event) => {
  if (event.target.closest("a") || dragBox.moved) return;
  const element = event.target.closest(".series-card");
  if (element) toggle(element.dataset.uid, event.shiftKey);
});
cardsBox.addEventListener("keydown", (event) => {
  const element = event.target.closest(".series-card");
  if (element && (event.key === "Enter" || event.key === " ")) {
    event.preventDefault();
    toggle(element.dataset.uid, event.shiftKey);
  }
});

// Drag box: pressing on the cards and dragging draws a box; the cards it touches become the
// selection (added to it with Shift or Ctrl). A press that does not move stays a click.
const DRAG_THRESHOLD = 5;
const dragBox = { start: null, element: null, moved: false };

function boxRect(event) {
  const origin = cardsBox.getBoundingClientRect();
  const x = event.clientX - origin.left;
  const y = event.clientY - origin.top;
  const { x: x0, y: y0 } = dragBox.start;
  return { left: Math.min(x, x0), top: Math.min(y, y0), right: Math.max(x, x0), bottom: Math.max(y, y0) };
}

function cardsIn(rect) {
  const origin = cardsBox.getBoundingClientRect();
  return [...state.cards.values()].filter(({ element }) => {
    const r = element.getBoundingClientRect();
    const left = r.left - origin.left;
    const top = r.top - origin.top;
    return left < rect.right && left + r.width > rect.left && top < rect.bottom && top + r.height > rect.top;
  }).map(({ hit }) => hit.series_instance_uid);
}

cardsBox.addEventListener("pointerdown", (event) => {
  if (event.button !== 0 || event.target.closest("a, button, input")) return;
  const origin = cardsBox.getBoundingClientRect();
  dragBox.start = { x: event.clientX - origin.left, y: event.clientY - origin.top, add: event.shiftKey || event.ctrlKey || event.metaKey };
  dragBox.moved = false;
});
document.addEventListener("pointermove", (event) => {
  if (!dragBox.start) return;
  const rect = boxRect(event);
  if (!dragBox.moved && rect.right - rect.left < DRAG_THRESHOLD && rect.bottom - rect.top < DRAG_THRESHOLD) return;
  if (!dragBox.moved) {
    dragBox.moved = true;
    dragBox.element = h("div", { class: "drag-box", "aria-hidden": "true" });
    cardsBox.append(dragBox.element);
    cardsBox.setPointerCapture?.(event.pointerId);
  }
  event.preventDefault();
  Object.assign(dragBox.element.style, {
    left: `${rect.left}px`, top: `${rect.top}px`, width: `${rect.right - rect.left}px`, height: `${rect.bottom - rect.top}px`,
  });
});
document.addEventListener("pointerup", (event) => {
  if (!dragBox.start) return;
  if (dragBox.moved) {
    const uids = cardsIn(boxRect(event));
    if (!dragBox.start.add) state.selected.clear();
    uids.forEach((uid) => state.selected.add(uid));
    dragBox.element.remove();
    showSelection();
    setTimeout(() => { dragBox.moved = false; }, 0); // the click that follows is not a toggle
  }
  dragBox.start = null;
});

// Every series the query matches, not only the loaded cards.
async function selectAll() {
  const uids = [];
  let cursor = null;
  do {
    const body = { project, query: query(), limit: SELECT_ALL_PAGE, cursor };
    const page = await attempt(() => api("POST", "/api/v1/search", body));
    if (!page) return;
    uids.push(...page.items.map((hit) => hit.series_instance_uid));
    cursor = page.next_cursor;
  } while (cursor);
  uids.forEach((uid) => state.selected.add(uid));
  showSelection();
}

document.getElementById("select-all").addEventListener("click", selectAll);
document.getElementById("select-none").addEventListener("click", () => {
  state.selected.clear();
  showSelection();
});
document.getElementById("group-toggle").addEventListener("change", (event) => {
  navigate(state.filters, { group: event.target.checked });
});

// --- actions on the selection ---------------------------------------------------------------

function chosen() {
  const focused = document.activeElement?.closest?.(".series-card");
  if (state.selected.size) return [...state.selected];
  return focused ? [focused.dataset.uid] : [];
}

function needSelection() {
  const uids = chosen();
  if (!uids.length) showMessage("select series first (click a card, or Select all results)");
  return uids;
}

async function changeTags(tag, add) {
  const uids = needSelection();
  if (!uids.length || !tag) return;
  const body = { project, series_instance_uids: uids, add: add ? [tag] : [], remove: add ? [] : [tag] };
  const answer = await attempt(() => api("POST", "/api/v1/tags", body));
  if (!answer) return;
  for (const uid of uids) {
    const entry = state.cards.get(uid);
    if (!entry) continue;
    const tags = new Set(entry.hit.tags);
    if (add) tags.add(tag); else tags.delete(tag);
    entry.hit.tags = [...tags].sort();
    entry.element.querySelector(".tags").replaceWith(tagList(entry.hit.tags));
  }
  showMessage(`${add ? "Tagged" : "Untagged"} ${uids.length} series: ${tag}.`, "notice");
  renderFacets();
}

function tagKeys() {
  try {
    const stored = JSON.parse(localStorage.getItem(TAG_KEYS_STORAGE));
    if (Array.isArray(stored) && stored.length === 9) return stored.map(String);
  } catch { /* a damaged entry falls back to the defaults */ }
  return DEFAULT_TAG_KEYS;
}

function setUpTagKeys() {
  const keys = tagKeys();
  const inputs = keys.map((tag, i) => {
    const input = h("input", { value: tag, maxlength: "64", size: "9", "aria-label": `Tag of key ${i + 1}` });
    input.addEventListener("change", () => {
      keys[i] = input.value.trim();
      localStorage.setItem(TAG_KEYS_STORAGE, JSON.stringify(keys));
    });
    return h("label", { class: "check" }, h("kbd", {}, String(i + 1)), input);
  });
  document.getElementById("tag-keys").replaceChildren(...inputs);
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select")) return;
    if (!/^[1-9]$/.test(event.key)) return;
    const tag = keys[Number(event.key) - 1];
    if (tag) changeTags(tag, true);
  });
  const input = document.getElementById("tag-input");
  document.getElementById("tag-add").addEventListener("click", () => changeTags(input.value.trim(), true));
  document.getElementById("tag-remove").addEventListener("click", () => changeTags(input.value.trim(), false));
}

function datasetName() {
  const name = document.getElementById("dataset-name").value.trim();
  if (!name) showMessage("name the dataset first");
  return name;
}

async function datasetAction(kind) {
  const uids = needSelection();
  const name = uids.length && datasetName();
  if (!name) return;
  const path = `${projectPath}/datasets/${encodeURIComponent(name)}/series`;
  const answer = await attempt(() => (kind === "create"
    ? api("POST", `${projectPath}/datasets`, { name, kind: "selection", series: uids })
    : api("POST", kind === "add" ? path : `${path}/remove`, { series: uids })));
  if (!answer) return;
  if (kind === "create") {
    document.getElementById("dataset-list").append(h("option", { value: name }));
    showMessage(`Dataset ${name} created with ${answer.series} series.`, "notice");
  } else {
    const verb = kind === "add" ? "added to" : "removed from";
    showMessage(`${answer.changed} series ${verb} ${name}; it has ${answer.dataset.series} now.`, "notice");
  }
}

async function deleteSeries() {
  const uids = needSelection();
  if (!uids.length) return;
  const sure = window.confirm(`Delete ${uids.length} series from project ${project}? ` +
    "Series no other project holds are removed from the archive. This cannot be undone.");
  if (!sure) return;
  const answer = await attempt(() => api("POST", `${projectPath}/series/delete`, { series: uids }));
  if (!answer) return;
  state.selected.clear();
  showSelection();
  showMessage(`${answer.series_unlinked} series deleted from ${project}.`, "notice");
  refresh();
}

function runWorkflow() {
  const uids = needSelection();
  const name = document.getElementById("workflow-name").value;
  if (!uids.length || !name) return;
  const query = new URLSearchParams({ series: uids.join(",") });
  window.location.assign(`/p/${encodeURIComponent(project)}/workflows/${encodeURIComponent(name)}?${query}`);
}

// A form post, so the browser streams the archive to disk instead of into memory.
function downloadZip() {
  const uids = needSelection();
  if (!uids.length) return;
  const form = h("form", { method: "post", action: `/p/${encodeURIComponent(project)}/download`, hidden: true },
    h("input", { type: "hidden", name: "csrf_token", value: csrfToken() ?? "" }),
    h("input", { type: "hidden", name: "series", value: uids.join(" ") }));
  document.body.append(form);
  form.submit();
  form.remove();
  showMessage(`Downloading ${uids.length} series as a zip archive.`, "notice");
}

document.getElementById("download-zip").addEventListener("click", downloadZip);

if (canWrite) {
  setUpTagKeys();
  document.getElementById("workflow-run").addEventListener("click", runWorkflow);
  for (const kind of ["create", "add", "remove"]) {
    document.getElementById(`dataset-${kind}`).addEventListener("click", () => datasetAction(kind));
  }
  if (canDelete) document.getElementById("series-delete").addEventListener("click", deleteSeries);
}

window.addEventListener("popstate", () => {
  state.filters = readFilters();
  document.getElementById("search-text").value = state.filters.text;
  refresh();
});

initLayout();
// The field list only types the values of f= filters (numbers compare as numbers); without
// such filters the first cards and facets need not wait for it.
const fieldsLoaded = setUpFieldFilter();
if (state.filters.values.size) fieldsLoaded.then(refresh);
else refresh();
