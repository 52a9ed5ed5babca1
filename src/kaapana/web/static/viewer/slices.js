// The slices of an image series: one per frame of every instance, ordered along the normal of
// the image plane (ImagePositionPatient, per frame for multi-frame objects), else by number.
import { TAGS, first, frameNumbers, number } from "../dicom_json.js";

function cross(a, b) {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function normalOf(orientation) {
  return orientation && orientation.length === 6 ? cross(orientation.slice(0, 3), orientation.slice(3)) : null;
}

export function along(normal, position) {
  return normal[0] * position[0] + normal[1] * position[1] + normal[2] * position[2];
}

export function buildSlices(instances) {
  const slices = [];
  for (const dataset of instances) {
    const frames = Math.max(number(dataset, TAGS.NumberOfFrames, 1), 1);
    for (let index = 0; index < frames; index += 1) {
      slices.push({
        dataset,
        sopInstanceUid: first(dataset, TAGS.SOPInstanceUID),
        frame: index + 1,
        instanceNumber: number(dataset, TAGS.InstanceNumber, 0),
        position: frameNumbers(dataset, index, TAGS.PlanePositionSequence, TAGS.ImagePositionPatient),
        orientation: frameNumbers(dataset, index, TAGS.PlaneOrientationSequence, TAGS.ImageOrientationPatient),
      });
    }
  }
  const normal = normalOf(slices.find((s) => s.orientation)?.orientation);
  const located = normal && slices.every((s) => s.position);
  for (const slice of slices) slice.depth = located ? along(normal, slice.position) : null;
  slices.sort((a, b) => (located ? a.depth - b.depth : 0)
    || a.instanceNumber - b.instanceNumber || a.frame - b.frame);
  return { slices, normal: located ? normal : null };
}

// What it takes to turn a frame's bytes into values: the modality LUT and the object's window.
export function pixelModule(slice) {
  const { dataset } = slice;
  const index = slice.frame - 1;
  const transform = frameNumbers(dataset, index, TAGS.PixelValueTransformationSequence, TAGS.RescaleSlope);
  const intercept = frameNumbers(dataset, index, TAGS.PixelValueTransformationSequence, TAGS.RescaleIntercept);
  const center = frameNumbers(dataset, index, TAGS.FrameVOILUTSequence, TAGS.WindowCenter);
  const width = frameNumbers(dataset, index, TAGS.FrameVOILUTSequence, TAGS.WindowWidth);
  const spacing = frameNumbers(dataset, index, TAGS.PixelMeasuresSequence, TAGS.PixelSpacing);
  return {
    rows: number(dataset, TAGS.Rows),
    columns: number(dataset, TAGS.Columns),
    bitsAllocated: number(dataset, TAGS.BitsAllocated, 16),
    signed: number(dataset, TAGS.PixelRepresentation, 0) === 1,
    samples: number(dataset, TAGS.SamplesPerPixel, 1),
    planar: number(dataset, TAGS.PlanarConfiguration, 0) === 1,
    photometric: String(first(dataset, TAGS.PhotometricInterpretation, "MONOCHROME2")),
    slope: transform?.[0] ?? 1,
    intercept: intercept?.[0] ?? 0,
    window: center && width ? { center: center[0], width: width[0] } : null,
    aspect: spacing && spacing[0] > 0 ? spacing[1] / spacing[0] : 1,
  };
}

// Modality values (e.g. Hounsfield units) of one native frame, as a Float32Array.
export function modalityValues(bytes, module) {
  const { bitsAllocated, signed, slope, intercept } = module;
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  let raw;
  if (bitsAllocated === 8) raw = signed ? new Int8Array(buffer) : new Uint8Array(buffer);
  else if (bitsAllocated === 16) raw = signed ? new Int16Array(buffer) : new Uint16Array(buffer);
  else if (bitsAllocated === 32) raw = signed ? new Int32Array(buffer) : new Uint32Array(buffer);
  else throw new Error(`${bitsAllocated} bits allocated per pixel are not drawn`);
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) out[i] = raw[i] * slope + intercept;
  return out;
}

export function valueRange(values) {
  let low = Infinity;
  let high = -Infinity;
  for (const v of values) { if (v < low) low = v; if (v > high) high = v; }
  return { low, high };
}

// PS3.3 C.11.2.1.2.1 linear VOI: values into 0..255 grey, inverted for MONOCHROME1.
export function drawGrey(image, values, window, invert) {
  const { center, width } = window;
  const low = center - 0.5 - (width - 1) / 2;
  const span = Math.max(width - 1, 1);
  const data = image.data;
  for (let i = 0, j = 0; i < values.length; i += 1, j += 4) {
    let grey = ((values[i] - low) / span) * 255;
    grey = grey < 0 ? 0 : grey > 255 ? 255 : grey;
    if (invert) grey = 255 - grey;
    data[j] = grey; data[j + 1] = grey; data[j + 2] = grey; data[j + 3] = 255;
  }
}

// Colour frames (RGB, interleaved or planar) drawn as they are; the window does not apply.
export function drawColour(image, bytes, module) {
  const count = module.rows * module.columns;
  const data = image.data;
  for (let i = 0; i < count; i += 1) {
    for (let c = 0; c < 3; c += 1) data[i * 4 + c] = module.planar ? bytes[c * count + i] : bytes[i * 3 + c];
    data[i * 4 + 3] = 255;
  }
}
