// Upload: dropped or picked files, folders (walked recursively) and zip archives into the project.
// DICOM files go by STOW-RS in batches (their SOP Instance UID, read from the file meta, ties each
// answer to its file); zip archives to the server's import; NIfTI files (with metadata.json or
// dataset.json) in one request that starts the import-nifti workflow.
import { csrfToken } from "../api.js";
import { h, pageData } from "../dom.js";
import { initLayout } from "../layout.js";

initLayout();
const { project, nifti } = pageData();
const projectPath = encodeURIComponent(project);
const STOW_URL = `/dicomweb/projects/${projectPath}/studies`;
const BATCH_FILES = 32;
const BATCH_BYTES = 32 << 20;
const MAX_LISTED = 5000;
const NIFTI_NAME = /\.nii(\.gz)?$/i;
const NIFTI_DESCRIPTIONS = new Set(["metadata.json", "dataset.json"]);
const FAILURE_REASONS = {
  0xc000: "not readable as DICOM",
  0x0111: "a different object with this SOP Instance UID exists",
  0xa900: "belongs to another study",
  0x0110: "could not be stored",
};

const results = document.getElementById("results");
const progress = document.getElementById("progress");
const summary = document.getElementById("summary");
const counts = { stored: 0, failed: 0, skipped: 0 };
let listed = 0;

function report(name, outcome, detail = "") {
  counts[outcome === "stored" ? "stored" : outcome === "skipped" ? "skipped" : "failed"] += 1;
  summary.textContent = `${counts.stored} stored, ${counts.failed} failed, ${counts.skipped} skipped`;
  if (listed >= MAX_LISTED) return;
  listed += 1;
  results.append(h("li", { class: `outcome-${outcome}`, "data-outcome": outcome },
    h("span", { class: "file" }, name), ` — ${outcome}${detail ? `: ${detail}` : ""}`));
}

// --- collecting files -----------------------------------------------------------------------

function entries(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, prefix, found) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    found.push({ file, path: prefix + file.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (let batch = await entries(reader); batch.length; batch = await entries(reader)) {
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`, found);
    }
  }
}

async function dropped(transfer) {
  const found = [];
  const items = [...transfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (items.length) for (const entry of items) await walk(entry, "", found);
  else for (const file of transfer.files) found.push({ file, path: file.name });
  return found;
}

// --- DICOM: the SOP Instance UID from the file meta (group 0002, explicit VR little endian) --

const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]);

async function mediaStorageUid(file) {
  const head = new DataView(await file.slice(0, 4096).arrayBuffer());
  if (head.byteLength < 132 || String.fromCharCode(...new Uint8Array(head.buffer, 128, 4)) !== "DICM") return null;
  let at = 132;
  while (at + 8 <= head.byteLength) {
    const group = head.getUint16(at, true);
    const element = head.getUint16(at + 2, true);
    if (group !== 0x0002) return null;
    const vr = String.fromCharCode(head.getUint8(at + 4), head.getUint8(at + 5));
    const long = LONG_VRS.has(vr);
    const length = long ? head.getUint32(at + 8, true) : head.getUint16(at + 6, true);
    const start = at + (long ? 12 : 8);
    if (element === 0x0003) {
      const bytes = new Uint8Array(head.buffer, start, Math.min(length, head.byteLength - start));
      return new TextDecoder().decode(bytes).replace(/[\0 ]+$/, "");
    }
    at = start + length;
  }
  return null;
}

function send(url, body, contentType, sent) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader("Content-Type", contentType);
    request.setRequestHeader("Accept", "application/json, application/dicom+json");
    const token = csrfToken();
    if (token) request.setRequestHeader("X-CSRF-Token", token);
    request.upload.addEventListener("progress", (event) => sent(event.loaded));
    request.addEventListener("load", () => {
      let answer = null;
      try { answer = JSON.parse(request.responseText); } catch { /* not JSON: reported below */ }
      resolve({ status: request.status, answer });
    });
    request.addEventListener("error", () => reject(new Error("the connection failed")));
    request.send(body);
  });
}

function multipart(items, type, location) {
  const boundary = `kaapana-${crypto.randomUUID()}`;
  const pieces = [];
  for (const item of items) {
    const where = location ? `Content-Location: ${encodeURI(item.path)}\r\n` : "";
    pieces.push(`--${boundary}\r\nContent-Type: ${type}\r\n${where}\r\n`, item.file, "\r\n");
  }
  pieces.push(`--${boundary}--\r\n`);
  return { body: new Blob(pieces), contentType: `multipart/related; type="${type}"; boundary=${boundary}` };
}

function uidsOf(answer, sequenceTag) {
  return (answer?.[sequenceTag]?.Value ?? []).map((item) => ({
    uid: item["00081155"]?.Value?.[0] ?? null,
    reason: item["00081197"]?.Value?.[0],
  }));
}

async function stowBatch(batch, sent) {
  const { body, contentType } = multipart(batch, "application/dicom", false);
  const { status, answer } = await send(STOW_URL, body, contentType, sent);
  const stored = new Set(uidsOf(answer, "00081199").map((r) => r.uid));
  const failed = new Map(uidsOf(answer, "00081198").map((r) => [r.uid, r.reason]));
  for (const item of batch) {
    if (stored.has(item.uid)) report(item.path, "stored");
    else if (failed.has(item.uid)) report(item.path, "failed", FAILURE_REASONS[failed.get(item.uid)] ?? `reason ${failed.get(item.uid)}`);
    else report(item.path, "failed", answer?.detail ?? `the server answered ${status}`);
  }
}

async function importZip(item, sent) {
  const { status, answer } = await send(`/api/v1/projects/${projectPath}/imports`, item.file, "application/zip", sent);
  if (status !== 200) { report(item.path, "failed", answer?.detail ?? `the server answered ${status}`); return; }
  for (const member of answer.outcomes) {
    const outcome = { accepted: "stored", duplicate: "stored", replaced: "stored", skipped: "skipped" }[member.outcome] ?? "failed";
    report(`${item.path}/${member.name}`, outcome, member.outcome === outcome ? member.reason : member.outcome);
  }
}

async function importNifti(items, sent) {
  const { body, contentType } = multipart(items, "application/octet-stream", true);
  const { status, answer } = await send(`/api/v1/projects/${projectPath}/nifti-imports`, body, contentType, sent);
  if (status !== 201) {
    items.forEach((item) => report(item.path, "failed", answer?.detail ?? `the server answered ${status}`));
    return;
  }
  const link = h("a", { href: `/p/${projectPath}/runs/${answer.id}` }, `run #${answer.id}`);
  items.forEach((item) => report(item.path, "stored", "sent to import-nifti"));
  results.append(h("li", {}, "import-nifti is converting them: ", link));
}

// --- the upload -----------------------------------------------------------------------------

async function upload(found) {
  results.replaceChildren();
  Object.assign(counts, { stored: 0, failed: 0, skipped: 0 });
  listed = 0;
  const zips = [];
  const niftis = [];
  const dicoms = [];
  const hasNifti = found.some((item) => NIFTI_NAME.test(item.file.name));
  for (const item of found) {
    if (/\.zip$/i.test(item.file.name)) zips.push(item);
    else if (nifti && hasNifti && (NIFTI_NAME.test(item.file.name) || NIFTI_DESCRIPTIONS.has(item.file.name))) niftis.push(item);
    else dicoms.push(item);
  }
  const total = found.reduce((sum, item) => sum + item.file.size, 0) || 1;
  let done = 0;
  const sentOf = () => (loaded) => { progress.value = Math.min(done + loaded, total) / total; };
  const batches = [];
  let batch = [];
  let size = 0;
  for (const item of dicoms) {
    item.uid = await mediaStorageUid(item.file);
    if (!item.uid) { report(item.path, "skipped", "not a DICOM file"); done += item.file.size; continue; }
    if (batch.length >= BATCH_FILES || size + item.file.size > BATCH_BYTES) { batches.push(batch); batch = []; size = 0; }
    batch.push(item);
    size += item.file.size;
  }
  if (batch.length) batches.push(batch);
  const steps = [
    ...batches.map((b) => [b, (sent) => stowBatch(b, sent)]),
    ...zips.map((z) => [[z], (sent) => importZip(z, sent)]),
    ...(niftis.length ? [[niftis, (sent) => importNifti(niftis, sent)]] : []),
  ];
  for (const [items, step] of steps) {
    try {
      await step(sentOf());
    } catch (error) {
      items.forEach((item) => report(item.path, "failed", error.message));
    }
    done += items.reduce((sum, item) => sum + item.file.size, 0);
    progress.value = done / total;
  }
  progress.value = 1;
  summary.append(" — ", h("a", { href: `/p/${projectPath}/gallery` }, "open the gallery"));
}

const zone = document.getElementById("dropzone");
zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", async (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  upload(await dropped(event.dataTransfer));
});
for (const id of ["pick-files", "pick-folder"]) {
  const input = document.getElementById(id);
  input.addEventListener("change", () => {
    upload([...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name })));
    input.value = "";
  });
}
