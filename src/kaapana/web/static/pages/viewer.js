// Series viewer: the image series drawn slice by slice into a canvas from WADO-RS frames (native
// bytes, window/level applied here), SEG overlays from the SEG's own frames, the metadata of the
// shown object as a searchable table, and the series' validation.
// Requests: the metadata of each series once, the SEG frames in a few large requests, the image
// frames on demand (the slice shown first, then its neighbours outwards, a few at a time).
import { api } from "../api.js";
import { TAGS, display, number } from "../dicom_json.js";
import { h, pageData } from "../dom.js";
import { initLayout } from "../layout.js";
import { fetchParts } from "../multipart.js";
import { mapFrames, paintFrame, segmentationKind, segmentsOf } from "../viewer/segmentation.js";
import { buildSlices, drawColour, drawGrey, modalityValues, pixelModule, valueRange } from "../viewer/slices.js";

initLayout();
const { project, series, image, segmentations, keywords } = pageData();
const ROOT = `/dicomweb/projects/${encodeURIComponent(project)}`;
const FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"';
const PREFETCH_CONCURRENCY = 4;
const SEG_FRAMES_PER_REQUEST = 256;
const MULTIFRAME_CHUNK = 32;
const MAX_METADATA_ROWS = 3000;
const CT_PRESETS = [
  { label: "CT lung", center: -600, width: 1500 },
  { label: "CT soft tissue", center: 40, width: 400 },
  { label: "CT bone", center: 400, width: 1800 },
  { label: "CT brain", center: 40, width: 80 },
];

const canvas = document.getElementById("view");
const status = document.getElementById("viewer-status");
const state = {
  slices: [],
  normal: null,
  index: 0,
  window: null, // {center, width}; null: the object's own (or the frame's range)
  presetChosen: false,
  zoom: 1,
  panX: 0,
  panY: 0,
  opacity: 0.5,
  bytes: new Map(), // slice index -> frame bytes
  loading: new Map(), // slice index -> promise
  overlays: [],
  drawn: null, // {index, window}: what the image canvas holds
  metadataOf: null,
};
const imageCanvas = document.createElement("canvas");
const overlayCanvas = document.createElement("canvas");

const seriesUrl = (link) => `${ROOT}/studies/${encodeURIComponent(link.study_instance_uid)}/series/${encodeURIComponent(link.series_instance_uid)}`;
const instanceUrl = (link, sop) => `${seriesUrl(link)}/instances/${encodeURIComponent(sop)}`;

async function metadata(link) {
  const response = await fetch(`${seriesUrl(link)}/metadata`, {
    headers: { Accept: "application/dicom+json" }, credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`the metadata of series ${link.series_instance_uid} answered ${response.status}`);
  return response.json();
}

// --- image frames ---------------------------------------------------------------------------

function fetchSlice(index) {
  if (state.bytes.has(index)) return Promise.resolve();
  if (state.loading.has(index)) return state.loading.get(index);
  const slice = state.slices[index];
  const frames = number(slice.dataset, TAGS.NumberOfFrames, 1);
  // A multi-frame object: a run of its frames in one request.
  const wanted = frames > 1
    ? state.slices.map((s, i) => [s, i]).filter(([s, i]) => s.dataset === slice.dataset
      && !state.bytes.has(i) && Math.abs(s.frame - slice.frame) < MULTIFRAME_CHUNK / 2)
    : [[slice, index]];
  const url = `${instanceUrl(image, slice.sopInstanceUid)}/frames/${wanted.map(([s]) => s.frame).join(",")}`;
  const promise = fetchParts(url, FRAME_ACCEPT).then((parts) => {
    wanted.forEach(([, i], k) => { if (parts[k]) state.bytes.set(i, parts[k]); });
  }).finally(() => wanted.forEach(([, i]) => state.loading.delete(i)));
  wanted.forEach(([, i]) => state.loading.set(i, promise));
  return promise;
}

async function prefetch() {
  const order = [];
  for (let d = 1; order.length < state.slices.length - 1; d += 1) {
    if (state.index + d < state.slices.length) order.push(state.index + d);
    if (state.index - d >= 0) order.push(state.index - d);
  }
  const next = () => {
    const index = order.shift();
    return index === undefined ? null : fetchSlice(index).catch(() => undefined).then(next);
  };
  await Promise.all(Array.from({ length: PREFETCH_CONCURRENCY }, next));
}

// --- drawing --------------------------------------------------------------------------------

function ownWindow(module, values) {
  if (module.window && module.window.width > 0) return module.window;
  const { low, high } = valueRange(values);
  return { center: (low + high) / 2, width: Math.max(high - low, 1) };
}

function drawImage(index) {
  const slice = state.slices[index];
  const module = pixelModule(slice);
  const bytes = state.bytes.get(index);
  imageCanvas.width = module.columns;
  imageCanvas.height = module.rows;
  const context = imageCanvas.getContext("2d");
  const picture = context.createImageData(module.columns, module.rows);
  if (module.samples === 3) {
    drawColour(picture, bytes, module);
  } else {
    const values = modalityValues(bytes, module);
    if (!state.window) state.window = ownWindow(module, values);
    drawGrey(picture, values, state.window, module.photometric === "MONOCHROME1");
  }
  context.putImageData(picture, 0, 0);
  state.drawn = { index, window: state.window };
  return module;
}

function drawOverlay(index) {
  const first = state.overlays[0];
  if (!first) return false;
  overlayCanvas.width = first.columns;
  overlayCanvas.height = first.rows;
  const context = overlayCanvas.getContext("2d");
  const picture = context.createImageData(first.columns, first.rows);
  let painted = false;
  for (const overlay of state.overlays) {
    for (const { segment, frame } of overlay.onSlice[index]) {
      const description = overlay.segments.find((s) => s.number === segment);
      const bytes = overlay.frames.get(frame);
      if (!description?.visible || !bytes) continue;
      paintFrame(picture, bytes, description.colour, overlay.kind);
      painted = true;
    }
  }
  context.putImageData(picture, 0, 0);
  return painted;
}

function render() {
  const entry = state.slices[state.index];
  if (!entry) return;
  if (!state.bytes.has(state.index)) {
    status.textContent = `Loading slice ${state.index + 1}…`;
    fetchSlice(state.index).then(render, (error) => { status.textContent = `Slice ${state.index + 1} could not be loaded: ${error.message}`; });
    return;
  }
  const dpr = window.devicePixelRatio || 1;
  const size = canvas.getBoundingClientRect();
  canvas.width = Math.round(size.width * dpr);
  canvas.height = Math.round(size.height * dpr);
  const module = drawImage(state.index);
  const overlay = drawOverlay(state.index);
  const context = canvas.getContext("2d");
  context.setTransform(1, 0, 0, 1, 0, 0);
  context.fillStyle = "#000";
  context.fillRect(0, 0, canvas.width, canvas.height);
  const width = module.columns * module.aspect;
  const scale = Math.min(canvas.width / width, canvas.height / module.rows) * state.zoom;
  const x = (canvas.width - width * scale) / 2 + state.panX * dpr;
  const y = (canvas.height - module.rows * scale) / 2 + state.panY * dpr;
  context.imageSmoothingEnabled = false;
  context.drawImage(imageCanvas, x, y, width * scale, module.rows * scale);
  if (overlay) {
    context.globalAlpha = state.opacity;
    context.drawImage(overlayCanvas, x, y, width * scale, module.rows * scale);
    context.globalAlpha = 1;
  }
  canvas.dataset.slice = String(state.index + 1);
  canvas.dataset.sop = entry.sopInstanceUid;
  canvas.dataset.drawn = "true";
  document.getElementById("slice").value = String(state.index + 1);
  document.getElementById("slice-label").textContent = `${state.index + 1} / ${state.slices.length}`;
  const w = state.window;
  document.getElementById("window-label").textContent = w && module.samples !== 3 ? `C ${Math.round(w.center)} W ${Math.round(w.width)}` : "";
  status.textContent = overlay ? "Segments shown on this slice." : "";
  showMetadata();
}

function goTo(index) {
  const bounded = Math.min(Math.max(index, 0), state.slices.length - 1);
  if (bounded === state.index && state.drawn) return;
  state.index = bounded;
  render();
}

// --- controls -------------------------------------------------------------------------------

function setUpPresets() {
  const select = document.getElementById("preset");
  const options = [{ label: "From the object", window: null }];
  if (series.modality === "CT" || image.modality === "CT") options.push(...CT_PRESETS.map((p) => ({ label: p.label, window: p })));
  options.push({ label: "Custom", window: "custom" });
  select.replaceChildren(...options.map((o, i) => h("option", { value: String(i), hidden: o.window === "custom" }, o.label)));
  select.addEventListener("change", () => {
    const chosen = options[Number(select.value)];
    if (chosen.window === "custom") return;
    state.window = chosen.window ? { center: chosen.window.center, width: chosen.window.width } : null;
    render();
  });
  state.customOption = options.length - 1;
}

function setUpControls() {
  const slider = document.getElementById("slice");
  slider.max = String(state.slices.length);
  slider.addEventListener("input", () => goTo(Number(slider.value) - 1));
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    if (event.ctrlKey) zoomBy(event.deltaY < 0 ? 1.25 : 0.8);
    else goTo(state.index + Math.sign(event.deltaY));
  }, { passive: false });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    const steps = { ArrowDown: 1, ArrowRight: 1, PageDown: 10, ArrowUp: -1, ArrowLeft: -1, PageUp: -10 };
    if (event.key in steps) goTo(state.index + steps[event.key]);
    else if (event.key === "Home") goTo(0);
    else if (event.key === "End") goTo(state.slices.length - 1);
    else if (event.key === "+" || event.key === "=") zoomBy(1.25);
    else if (event.key === "-") zoomBy(0.8);
    else if (event.key === "0") resetView();
    else return;
    event.preventDefault();
  });
  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    drag = { x: event.clientX, y: event.clientY, pan: event.shiftKey || event.button !== 0 };
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    drag.x = event.clientX;
    drag.y = event.clientY;
    if (drag.pan) {
      state.panX += dx;
      state.panY += dy;
    } else if (state.window) {
      const step = Math.max(state.window.width, 10) / 200;
      state.window = { center: state.window.center + dy * step, width: Math.max(state.window.width + dx * step, 1) };
      document.getElementById("preset").value = String(state.customOption);
    }
    render();
  });
  const stop = () => { drag = null; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  canvas.addEventListener("contextmenu", (event) => event.preventDefault());
  document.getElementById("zoom-in").addEventListener("click", () => zoomBy(1.25));
  document.getElementById("zoom-out").addEventListener("click", () => zoomBy(0.8));
  document.getElementById("view-reset").addEventListener("click", resetView);
  new ResizeObserver(() => state.drawn && render()).observe(canvas);
}

function zoomBy(factor) {
  state.zoom = Math.min(Math.max(state.zoom * factor, 0.25), 16);
  render();
}

function resetView() {
  state.zoom = 1;
  state.panX = 0;
  state.panY = 0;
  render();
}

// --- segmentation overlays ------------------------------------------------------------------

async function loadOverlay(link, dataset) {
  const frames = Math.max(number(dataset, TAGS.NumberOfFrames, 1), 1);
  const sop = String(dataset[TAGS.SOPInstanceUID].Value[0]);
  const overlay = {
    link,
    segments: segmentsOf(dataset, state.overlays.reduce((n, o) => n + o.segments.length, 0)),
    onSlice: mapFrames(dataset, state.slices, state.normal),
    kind: segmentationKind(dataset),
    rows: number(dataset, TAGS.Rows),
    columns: number(dataset, TAGS.Columns),
    frames: new Map(),
    dataset,
  };
  state.overlays.push(overlay);
  const requests = [];
  for (let start = 1; start <= frames; start += SEG_FRAMES_PER_REQUEST) {
    const numbers = Array.from({ length: Math.min(SEG_FRAMES_PER_REQUEST, frames - start + 1) }, (_, k) => start + k);
    requests.push(fetchParts(`${instanceUrl(link, sop)}/frames/${numbers.join(",")}`, FRAME_ACCEPT)
      .then((parts) => numbers.forEach((n, k) => overlay.frames.set(n, parts[k]))));
  }
  await Promise.all(requests);
}

function showLegend() {
  const legend = document.getElementById("legend");
  if (!legend) return;
  legend.replaceChildren(...state.overlays.flatMap((overlay) => overlay.segments.map((segment) => {
    const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.backgroundColor = `rgb(${segment.colour.join(",")})`;
    const box = h("input", { type: "checkbox", checked: true, "data-segment": segment.number });
    box.addEventListener("change", () => { segment.visible = box.checked; render(); });
    return h("li", { "data-colour": segment.colour.join(",") }, h("label", { class: "check" }, box, swatch, ` ${segment.label}`));
  })));
  const opacity = document.getElementById("opacity");
  opacity.addEventListener("input", () => { state.opacity = Number(opacity.value) / 100; render(); });
}

// --- metadata table and validation ----------------------------------------------------------

function metadataRows(dataset, depth = 0, rows = []) {
  for (const [tag, element] of Object.entries(dataset)) {
    if (rows.length >= MAX_METADATA_ROWS) break;
    const keyword = keywords[tag] ?? "";
    const label = `${"› ".repeat(depth)}(${tag.slice(0, 4)},${tag.slice(4)})`;
    rows.push({ label, keyword, vr: element.vr ?? "", value: display(element) });
    if (element.vr === "SQ") {
      (element.Value ?? []).forEach((item, i) => {
        rows.push({ label: `${"› ".repeat(depth + 1)}item ${i + 1}`, keyword: "", vr: "", value: "" });
        metadataRows(item, depth + 1, rows);
      });
    }
  }
  return rows;
}

function showMetadata() {
  const segmentation = state.overlays.find((o) => o.link.series_instance_uid === series.series_instance_uid);
  const dataset = segmentation ? segmentation.dataset : state.slices[state.index]?.dataset;
  if (!dataset || dataset === state.metadataOf) return;
  state.metadataOf = dataset;
  document.getElementById("metadata-of").textContent = segmentation
    ? "(the segmentation object)" : `(instance of slice ${state.index + 1})`;
  const rows = metadataRows(dataset).map((row) => {
    const tr = h("tr", {}, h("td", { class: "tag" }, row.label), h("td", {}, row.keyword), h("td", {}, row.vr), h("td", {}, row.value));
    tr.dataset.search = `${row.label} ${row.keyword} ${row.value}`.toLowerCase();
    return tr;
  });
  document.getElementById("metadata-rows").replaceChildren(...rows);
  filterMetadata();
}

function filterMetadata() {
  const text = document.getElementById("metadata-search").value.trim().toLowerCase();
  for (const row of document.getElementById("metadata-rows").children) {
    row.hidden = Boolean(text) && !row.dataset.search.includes(text);
  }
}

async function showValidation() {
  const box = document.getElementById("validation");
  try {
    const result = await api("GET", `/api/v1/series/${encodeURIComponent(series.series_instance_uid)}/validation`);
    box.replaceChildren(
      h("p", {}, h("span", { class: `badge validation validation-${result.status}` }, result.status), ` by ${result.validator}`),
      ...[["Errors", result.errors], ["Warnings", result.warnings]].filter(([, list]) => list.length).map(([title, list]) =>
        h("details", { open: title === "Errors" }, h("summary", {}, `${title} (${list.length})`), h("ul", {}, list.map((m) => h("li", {}, m))))),
    );
  } catch (error) {
    box.replaceChildren(h("p", { class: "hint" }, `Not validated: ${error.message}`));
  }
}

// --- start ----------------------------------------------------------------------------------

async function start() {
  showValidation();
  document.getElementById("metadata-search").addEventListener("input", filterMetadata);
  if (!image) {
    const [own] = await metadata(series);
    state.metadataOf = null;
    state.overlays.push({ link: series, dataset: own, segments: [], onSlice: [] });
    showMetadata();
    return;
  }
  const [instances, ...segs] = await Promise.all([image, ...segmentations].map(metadata));
  ({ slices: state.slices, normal: state.normal } = buildSlices(instances));
  if (!state.slices.length) {
    status.textContent = "This series has no images.";
    return;
  }
  state.index = Math.floor(state.slices.length / 2);
  setUpPresets();
  setUpControls();
  const overlays = Promise.all(segmentations.map((link, i) => loadOverlay(link, segs[i][0])));
  await fetchSlice(state.index);
  render();
  await overlays;
  if (state.overlays.length) {
    showLegend();
    const counts = state.overlays[0].onSlice.map((frames) => frames.length);
    if (!counts[state.index]) state.index = counts.indexOf(Math.max(...counts));
  }
  render();
  prefetch();
}

start().catch((error) => {
  if (status) status.textContent = `The series could not be shown: ${error.message}`;
});
