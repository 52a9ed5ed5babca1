// DICOM SEG for the overlay: its segments (label, colour), and which frame goes onto which image
// slice: by the source image a frame was derived from (ReferencedSOPInstanceUID and frame
// number), else by its ImagePositionPatient along the image series' normal.
import { TAGS, first, frameGroup, frameNumbers, items, number, values } from "../dicom_json.js";
import { along } from "./slices.js";

// Distinct colours for segments without RecommendedDisplayCIELabValue.
const PALETTE = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
  [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
];

// DICOM's scaled CIELab (PS3.3 C.10.7.1.1) through XYZ (D65) to sRGB.
export function cielabToRgb([l16, a16, b16]) {
  const l = (l16 / 65535) * 100;
  const a = (a16 / 65535) * 255 - 128;
  const b = (b16 / 65535) * 255 - 128;
  const fy = (l + 16) / 116;
  const f = (t) => (t ** 3 > 0.008856 ? t ** 3 : (t - 16 / 116) / 7.787);
  const [x, y, z] = [0.95047 * f(fy + a / 500), 1.0 * f(fy), 1.08883 * f(fy - b / 200)];
  const linear = [
    3.2406 * x - 1.5372 * y - 0.4986 * z,
    -0.9689 * x + 1.8758 * y + 0.0415 * z,
    0.0557 * x - 0.204 * y + 1.057 * z,
  ];
  return linear.map((c) => {
    const v = c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055;
    return Math.round(Math.min(Math.max(v, 0), 1) * 255);
  });
}

export function segmentsOf(dataset, offset = 0) {
  return items(dataset, TAGS.SegmentSequence).map((item, i) => {
    const lab = values(item, TAGS.RecommendedDisplayCIELabValue).map(Number);
    return {
      number: number(item, TAGS.SegmentNumber, i + 1),
      label: String(first(item, TAGS.SegmentLabel, `Segment ${i + 1}`)),
      colour: lab.length === 3 ? cielabToRgb(lab) : PALETTE[(offset + i) % PALETTE.length],
      visible: true,
    };
  });
}

// For every image slice index, the SEG frames on it: [{segment, frame (1-based)}].
export function mapFrames(dataset, slices, normal) {
  const frames = Math.max(number(dataset, TAGS.NumberOfFrames, 1), 1);
  const bySource = new Map(slices.map((s, i) => [`${s.sopInstanceUid}#${s.frame}`, i]));
  const spacing = slices.length > 1 && normal ? Math.abs(slices[1].depth - slices[0].depth) || 1 : 1;
  const onSlice = slices.map(() => []);
  for (let index = 0; index < frames; index += 1) {
    const segment = number(frameGroup(dataset, index, TAGS.SegmentIdentificationSequence), TAGS.ReferencedSegmentNumber, 1);
    let target = -1;
    const derivation = frameGroup(dataset, index, TAGS.DerivationImageSequence);
    for (const source of items(derivation, TAGS.SourceImageSequence)) {
      const uid = first(source, TAGS.ReferencedSOPInstanceUID);
      const frame = number(source, TAGS.ReferencedFrameNumber, 1);
      if (bySource.has(`${uid}#${frame}`)) { target = bySource.get(`${uid}#${frame}`); break; }
    }
    const position = frameNumbers(dataset, index, TAGS.PlanePositionSequence, TAGS.ImagePositionPatient);
    if (target < 0 && position && normal) {
      const depth = along(normal, position);
      let best = Infinity;
      slices.forEach((s, i) => {
        const distance = Math.abs(s.depth - depth);
        if (distance < best) { best = distance; target = i; }
      });
      if (best > spacing / 2) target = -1;
    }
    if (target >= 0) onSlice[target].push({ segment, frame: index + 1 });
  }
  return onSlice;
}

export function segmentationKind(dataset) {
  const kind = String(first(dataset, TAGS.SegmentationType, "BINARY"));
  return { fractional: kind === "FRACTIONAL", maximum: number(dataset, TAGS.MaximumFractionalValue, 255) };
}

// Paint one SEG frame into `image` (RGBA of the SEG's size) in the segment's colour.
// Binary frames are bits, least significant first; fractional frames a byte per pixel.
export function paintFrame(image, bytes, colour, kind) {
  const data = image.data;
  const count = image.width * image.height;
  for (let i = 0; i < count; i += 1) {
    let alpha;
    if (kind.fractional) alpha = bytes[i] / kind.maximum;
    else alpha = (bytes[i >> 3] >> (i & 7)) & 1;
    if (!alpha) continue;
    const j = i * 4;
    data[j] = colour[0]; data[j + 1] = colour[1]; data[j + 2] = colour[2];
    data[j + 3] = Math.max(data[j + 3], Math.round(alpha * 255));
  }
}
