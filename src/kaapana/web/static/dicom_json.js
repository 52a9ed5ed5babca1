// Reading DICOM JSON (PS3.18 F.2) as the WADO-RS metadata returns it: values by tag, with
// Per-Frame and Shared Functional Groups looked through for multi-frame objects.

export const TAGS = {
  SOPInstanceUID: "00080018",
  SOPClassUID: "00080016",
  ReferencedSOPInstanceUID: "00081155",
  ReferencedFrameNumber: "00081160",
  SourceImageSequence: "00082112",
  DerivationImageSequence: "00089124",
  PatientName: "00100010",
  InstanceNumber: "00200013",
  ImagePositionPatient: "00200032",
  ImageOrientationPatient: "00200037",
  PlanePositionSequence: "00209113",
  PlaneOrientationSequence: "00209116",
  SamplesPerPixel: "00280002",
  PhotometricInterpretation: "00280004",
  PlanarConfiguration: "00280006",
  NumberOfFrames: "00280008",
  Rows: "00280010",
  Columns: "00280011",
  PixelSpacing: "00280030",
  BitsAllocated: "00280100",
  PixelRepresentation: "00280103",
  WindowCenter: "00281050",
  WindowWidth: "00281051",
  RescaleIntercept: "00281052",
  RescaleSlope: "00281053",
  PixelMeasuresSequence: "00289110",
  FrameVOILUTSequence: "00289132",
  PixelValueTransformationSequence: "00289145",
  SegmentSequence: "00620002",
  SegmentNumber: "00620004",
  SegmentLabel: "00620005",
  RecommendedDisplayCIELabValue: "0062000D",
  SegmentIdentificationSequence: "0062000A",
  ReferencedSegmentNumber: "0062000B",
  SegmentationType: "00620001",
  MaximumFractionalValue: "0062000E",
  SharedFunctionalGroupsSequence: "52009229",
  PerFrameFunctionalGroupsSequence: "52009230",
};

export function values(dataset, tag) {
  return dataset?.[tag]?.Value ?? [];
}

export function first(dataset, tag, fallback = undefined) {
  const found = values(dataset, tag);
  return found.length ? found[0] : fallback;
}

export function number(dataset, tag, fallback = undefined) {
  const value = Number(first(dataset, tag));
  return Number.isFinite(value) ? value : fallback;
}

export function numbers(dataset, tag) {
  const found = values(dataset, tag).map(Number);
  return found.length && found.every(Number.isFinite) ? found : null;
}

export function items(dataset, tag) {
  return values(dataset, tag).filter((item) => item && typeof item === "object");
}

// The functional group item `sequenceTag` of frame `index` (0-based): per frame first, then
// shared, as PS3.3 C.7.6.16 lets an attribute live in either.
export function frameGroup(dataset, index, sequenceTag) {
  const perFrame = items(dataset, TAGS.PerFrameFunctionalGroupsSequence)[index];
  const own = perFrame && items(perFrame, sequenceTag)[0];
  if (own) return own;
  const shared = items(dataset, TAGS.SharedFunctionalGroupsSequence)[0];
  return shared ? items(shared, sequenceTag)[0] : undefined;
}

// One attribute of a frame: from its functional group, else from the top level.
export function frameNumbers(dataset, index, sequenceTag, tag) {
  return numbers(frameGroup(dataset, index, sequenceTag), tag) ?? numbers(dataset, tag);
}

// A PN value as written in DICOM: its component groups joined by "=".
function personName(value) {
  const groups = [value.Alphabetic ?? "", value.Ideographic ?? "", value.Phonetic ?? ""];
  while (groups.length > 1 && !groups[groups.length - 1]) groups.pop();
  return groups.join("=");
}

// A value as text, for the metadata table.
export function display(element) {
  if (!element) return "";
  if (element.BulkDataURI) return "(bulk data)";
  if (element.InlineBinary) return "(binary)";
  if (element.vr === "SQ") return `${(element.Value ?? []).length} item(s)`;
  return (element.Value ?? []).map((v) => (v && typeof v === "object" ? personName(v) : String(v))).join("\\");
}
