"""Deterministic synthetic DICOM: CT and MR phantom series, DICOM SEG and demo cohorts.

Demo installs, tests and benchmarks need realistic-looking DICOM that can be shipped, regenerated
and shared freely, so nothing here touches real patient data, the clock or global random state:
the same arguments always give byte-identical Part 10 files. Every UID is a hash of the
arguments that define the object (see :func:`_uid`), dates and times derive from the study date,
and all randomness comes from seeded :func:`numpy.random.default_rng` streams. (numpy does not
promise identical random streams across its releases, so byte-identity is guaranteed within one
environment; bump :data:`GENERATOR_VERSION` when output changes on purpose.)

Phantom shapes are laid out in normalised coordinates (the shorter image side spans ``[-1, 1]``
and the series spans ``t`` from 0 at the top slice to 1 at the bottom slice), so every matrix
size and slice count shows the complete anatomy; pixel spacing and slice thickness only change
the DICOM geometry. Image columns run from patient right to patient left and rows from anterior
to posterior (LPS, the standard radiological display), and instance 1 is the most superior
slice.

The seed chooses the patient's anatomy (body size, organ sizes, diaphragm height) and, together
with the SeriesInstanceUID, the image noise: two studies of one patient generated with the same
seed show the same body with different noise, just like a follow-up scan.
"""

import copy
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import DA, TM, format_number_as_ds

__all__ = [
    "GENERATOR_VERSION",
    "SEGMENT_LABELS",
    "Phantom",
    "ct_segmentation",
    "ct_series",
    "demo_cohort",
    "mr_series",
    "phantom_slice",
    "phantom_volume",
    "write_datasets",
]

# Part of every UID hash: bump whenever generated content changes, so that different pixel data
# can never be published under a UID that already identified other data.
GENERATOR_VERSION: Final = "1"

SEGMENT_LABELS: Final = ("body", "lungs", "bones", "liver")

_IMPLEMENTATION_CLASS_UID: Final = generate_uid(entropy_srcs=["kaapana.testing.synthetic"])
_IMPLEMENTATION_VERSION_NAME: Final = f"KAAPANA_SYN_{GENERATOR_VERSION}"
_SOFTWARE_VERSIONS: Final = f"kaapana.testing.synthetic {GENERATOR_VERSION}"
_MANUFACTURER: Final = "Kaapana Synthetic"
_INSTITUTION_NAME: Final = "Kaapana Demo Hospital"

# 12-bit unsigned stored values with a -1024 intercept: a common scanner layout, and one that
# exercises the rescale path of every consumer.
_CT_RESCALE_INTERCEPT: Final = -1024
_MAX_STORED_VALUE: Final = 4095
_CT_NOISE_HU: Final = 12.0
_MR_NOISE: Final = 12.0

_AIR_HU: Final = -1000.0
_FAT_HU: Final = -100.0
_SOFT_TISSUE_HU: Final = 40.0
_LIVER_HU: Final = 60.0
_LUNG_HU: Final = -850.0
_CANCELLOUS_BONE_HU: Final = 250.0
_CORTICAL_BONE_HU: Final = 700.0

# Independent random streams per purpose, so that e.g. adding an anatomy parameter never
# changes the noise of existing data sets.
_ANATOMY_STREAM: Final = 1
_COHORT_STREAM: Final = 2
_HEAD_STREAM: Final = 3

_PIXEL_DATA: Final = 0x7FE00010

_GIVEN_NAMES: Final = ("Alex", "Blake", "Casey", "Dana", "Eli", "Finn", "Gray", "Harper")


def _stable_int(*parts: object) -> int:
    """Hash to a 64-bit integer; Python's ``hash()`` is salted per process, this is not."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _uid(*parts: object) -> UID:
    """Derive a UID from the values that define an object, so regeneration reproduces it."""
    entropy = ["kaapana.testing.synthetic", GENERATOR_VERSION, *map(str, parts)]
    return generate_uid(entropy_srcs=entropy)


def _ds(value: float) -> str:
    """Format a decimal string; rounding first keeps float noise out of the 16-char DS limit."""
    return format_number_as_ds(round(float(value), 6))


def _da(value: date) -> str:
    return value.strftime("%Y%m%d")


def _tm(value: time) -> str:
    return value.strftime("%H%M%S")


# --------------------------------------------------------------------------------------------
# Phantom geometry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Grid:
    """Pixel-centre coordinates, kept 1-D so shape tests broadcast instead of filling planes."""

    u: npt.NDArray[np.float32]  # per column, patient right (-) to left (+)
    v: npt.NDArray[np.float32]  # per row, anterior (-) to posterior (+)

    @classmethod
    def of(cls, rows: int, columns: int) -> "_Grid":
        half = min(rows, columns) / 2
        u = (np.arange(columns, dtype=np.float32) - (columns - 1) / 2) / half
        v = (np.arange(rows, dtype=np.float32) - (rows - 1) / 2) / half
        return cls(u=u, v=v)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.v.size, self.u.size)

    def empty(self) -> npt.NDArray[np.bool_]:
        return np.zeros(self.shape, dtype=np.bool_)

    def paint(
        self, mask: npt.NDArray[np.bool_], cx: float, cy: float, a: float, b: float
    ) -> npt.NDArray[np.bool_]:
        """OR an ellipse into ``mask`` within its bounding box only, which keeps many small
        shapes (ribs) cheap on 512x512 images."""
        if a > 0 and b > 0:
            c0, c1 = np.searchsorted(self.u, [cx - a, cx + a])
            r0, r1 = np.searchsorted(self.v, [cy - b, cy + b])
            du = ((self.u[c0:c1] - cx) / a) ** 2
            dv = ((self.v[r0:r1] - cy) / b) ** 2
            mask[r0:r1, c0:c1] |= (dv[:, None] + du[None, :]) <= 1.0
        return mask

    def ellipse(self, cx: float, cy: float, a: float, b: float) -> npt.NDArray[np.bool_]:
        return self.paint(self.empty(), cx, cy, a, b)


def _dome(s: float) -> float:
    """Cross-section scale of an organ at relative height ``s`` in [0, 1] of its extent: zero
    outside, widest a little below its top, rounded at both ends like a dome."""
    if not 0.0 < s < 1.0:
        return 0.0
    return float(np.sqrt(np.sin(np.pi * s**1.5)))


def _slice_t(index: int, slices: int) -> float:
    return (index + 0.5) / slices


@dataclass(frozen=True, slots=True)
class _Anatomy:
    """Per-patient variation, so cohort members differ while follow-ups stay comparable."""

    body_width: float
    body_depth: float
    fat: float
    lung_scale: float
    right_lung_end: float
    liver_scale: float

    @classmethod
    def from_seed(cls, seed: int) -> "_Anatomy":
        rng = np.random.default_rng([seed, _ANATOMY_STREAM])
        body_width = float(rng.uniform(0.74, 0.84))
        return cls(
            body_width=body_width,
            body_depth=body_width * float(rng.uniform(0.66, 0.76)),
            fat=float(rng.uniform(0.04, 0.08)),
            lung_scale=float(rng.uniform(0.92, 1.05)),
            right_lung_end=float(rng.uniform(0.58, 0.64)),
            liver_scale=float(rng.uniform(0.9, 1.1)),
        )


def _thorax_abdomen(
    grid: _Grid, anatomy: _Anatomy, t: float
) -> tuple[npt.NDArray[np.float32], dict[str, npt.NDArray[np.bool_]]]:
    """Noise-free HU and the label masks of one axial slice, from one shared set of shapes so
    that CT pixels and SEG labels cannot drift apart."""
    bulge = np.sin(np.pi * t)
    a = anatomy.body_width * (0.94 + 0.06 * bulge)
    b = anatomy.body_depth * (0.92 + 0.08 * bulge)
    inner_a, inner_b = a - anatomy.fat, b - anatomy.fat

    body = grid.ellipse(0.0, 0.0, a, b)
    muscle_and_organs = grid.ellipse(0.0, 0.0, inner_a, inner_b)

    # The right lung ends higher because the liver dome pushes the right diaphragm up.
    lungs = grid.empty()
    for side, end in ((-1.0, anatomy.right_lung_end), (1.0, anatomy.right_lung_end + 0.04)):
        scale = anatomy.lung_scale * _dome((t - 0.02) / (end - 0.02))
        grid.paint(
            lungs,
            side * 0.47 * anatomy.body_width,
            -0.03,
            0.27 * anatomy.body_width * scale,
            0.70 * anatomy.body_depth * scale,
        )

    liver_top = anatomy.right_lung_end - 0.08
    liver_scale = anatomy.liver_scale * _dome((t - liver_top) / 0.38)
    liver = grid.ellipse(
        -0.35 * anatomy.body_width,
        0.0,
        0.45 * anatomy.body_width * liver_scale,
        0.60 * anatomy.body_depth * liver_scale,
    )

    # Vertebra: cortical ring around cancellous bone, then the arch around the spinal canal
    # and the spinous process, all behind the body centre.
    vertebra_y, vertebra_r = 0.36 * b, 0.075
    cancellous = grid.ellipse(0.0, vertebra_y, vertebra_r - 0.022, vertebra_r - 0.022)
    cortical = grid.ellipse(0.0, vertebra_y, vertebra_r, vertebra_r) & ~cancellous
    canal_y = vertebra_y + vertebra_r + 0.03
    canal = grid.ellipse(0.0, canal_y, 0.028, 0.028)
    grid.paint(cortical, 0.0, canal_y, 0.065, 0.055)
    cortical &= ~canal
    grid.paint(cortical, 0.0, canal_y + 0.085, 0.022, 0.045)

    lung_end = anatomy.right_lung_end + 0.04
    if t < lung_end + 0.12:
        ring_a, ring_b = inner_a - 0.035, inner_b - 0.035
        for degrees in (-40.0, -10.0, 20.0, 50.0, 75.0):
            angle = np.deg2rad(degrees)
            for side in (-1.0, 1.0):
                grid.paint(
                    cortical,
                    side * ring_a * np.cos(angle),
                    ring_b * np.sin(angle),
                    0.03,
                    0.022,
                )
    if 0.04 < t < lung_end - 0.05:
        grid.paint(cortical, 0.0, -(inner_b - 0.03), 0.06, 0.025)

    bones = (cortical | cancellous) & body
    lungs &= muscle_and_organs & ~bones
    liver &= muscle_and_organs & ~bones & ~lungs

    hu = np.full(grid.shape, _AIR_HU, dtype=np.float32)
    hu[body] = _FAT_HU
    hu[muscle_and_organs] = _SOFT_TISSUE_HU
    hu[liver] = _LIVER_HU
    hu[lungs] = _LUNG_HU
    hu[cancellous & body] = _CANCELLOUS_BONE_HU
    hu[cortical & body] = _CORTICAL_BONE_HU
    return hu, {"body": body, "lungs": lungs, "bones": bones, "liver": liver}


@dataclass(frozen=True, slots=True)
class Phantom:
    """Noise-free CT phantom: what the CT pixels show before noise, and the ground truth that
    :func:`ct_segmentation` encodes. Arrays are ``(rows, columns)`` for one slice or
    ``(slices, rows, columns)`` for a volume, in image order (instance 1 first)."""

    hu: npt.NDArray[np.int16]
    masks: Mapping[str, npt.NDArray[np.bool_]]


def phantom_slice(index: int, *, rows: int, columns: int, slices: int, seed: int) -> Phantom:
    """One slice of the phantom that :func:`ct_series` draws with the same arguments, for
    callers (like the SEG builder) that must not hold a whole volume in memory."""
    if not 0 <= index < slices:
        raise ValueError(f"slice index {index} outside 0..{slices - 1}")
    hu, masks = _thorax_abdomen(
        _Grid.of(rows, columns), _Anatomy.from_seed(seed), _slice_t(index, slices)
    )
    return Phantom(hu=hu.astype(np.int16), masks=masks)


def phantom_volume(
    *, rows: int = 128, columns: int = 128, slices: int = 48, seed: int = 0
) -> Phantom:
    """The complete noise-free phantom behind ``ct_series(rows=..., columns=..., slices=...,
    seed=...)``, for checking images and labels against the truth in tests."""
    parts = [
        phantom_slice(index, rows=rows, columns=columns, slices=slices, seed=seed)
        for index in range(slices)
    ]
    return Phantom(
        hu=np.stack([part.hu for part in parts]),
        masks={label: np.stack([part.masks[label] for part in parts]) for label in SEGMENT_LABELS},
    )


def _head(grid: _Grid, size: float, t: float) -> npt.NDArray[np.float32]:
    """Noise-free T1-weighted head slice: scalp fat bright, skull and CSF dark, white matter
    brighter than grey matter."""
    scale = size * float(np.sqrt(max(0.0, 1.0 - ((t - 0.6) / 0.75) ** 2)))
    a, b = 0.66 * scale, 0.82 * scale
    image = np.zeros(grid.shape, dtype=np.float32)
    for layer_a, layer_b, value in (
        (a, b, 850.0),  # scalp
        (a - 0.05, b - 0.05, 40.0),  # skull
        (a - 0.11, b - 0.11, 120.0),  # cerebrospinal fluid
        (a - 0.135, b - 0.135, 480.0),  # grey matter
        (0.78 * (a - 0.135), 0.78 * (b - 0.135), 680.0),  # white matter
    ):
        image[grid.ellipse(0.0, 0.0, layer_a, layer_b)] = value
    ventricles = _dome((t - 0.3) / 0.35)
    for side in (-1.0, 1.0):
        image[grid.ellipse(side * 0.09, -0.05, 0.065 * ventricles, 0.25 * ventricles)] = 120.0
    return image


# --------------------------------------------------------------------------------------------
# DICOM headers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Series:
    """Everything that is constant across the instances of one generated series."""

    modality: str
    patient_id: str
    patient_name: str
    patient_birth_date: date
    patient_sex: str
    study_instance_uid: str
    study_date: date
    rows: int
    columns: int
    slices: int
    pixel_spacing: float
    slice_thickness: float
    seed: int
    series_number: int
    series_description: str

    @property
    def series_instance_uid(self) -> UID:
        return _uid(
            "series",
            self.study_instance_uid,
            self.modality,
            self.series_number,
            self.series_description,
            self.seed,
            self.rows,
            self.columns,
            self.slices,
            self.pixel_spacing,
            self.slice_thickness,
        )

    @property
    def series_datetime(self) -> datetime:
        # Series follow each other a few minutes apart within the study, never past midnight.
        start = datetime.combine(self.study_date, _study_time(self.study_instance_uid))
        return start + timedelta(minutes=3 * (self.series_number % 10))


def _study_time(study_instance_uid: str) -> time:
    """Study start between 08:00 and 16:59, fixed per study so all its series agree."""
    minutes = _stable_int("study-time", study_instance_uid) % (9 * 60)
    return time(8 + minutes // 60, minutes % 60)


def _patient_age(birth: date, on: date) -> str:
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return f"{max(years, 0):03d}Y"


def _series(
    modality: str,
    *,
    patient_id: str,
    patient_name: str,
    patient_birth_date: date,
    patient_sex: str,
    study_instance_uid: str | None,
    study_date: date,
    rows: int,
    columns: int,
    slices: int,
    pixel_spacing: float,
    slice_thickness: float,
    seed: int,
    series_number: int,
    series_description: str,
) -> _Series:
    if min(rows, columns) < 16:
        raise ValueError("rows and columns must be at least 16")
    if slices < 1:
        raise ValueError("slices must be at least 1")
    if pixel_spacing <= 0 or slice_thickness <= 0:
        raise ValueError("pixel_spacing and slice_thickness must be positive")
    if seed < 0:
        raise ValueError("seed must not be negative")
    if series_number < 1:
        raise ValueError("series_number must be positive")
    if patient_sex not in {"M", "F", "O"}:
        raise ValueError("patient_sex must be 'M', 'F' or 'O'")
    if study_instance_uid is None:
        study_instance_uid = _uid("study", patient_id, study_date.isoformat(), modality, seed)
    return _Series(
        modality=modality,
        patient_id=patient_id,
        patient_name=patient_name,
        patient_birth_date=patient_birth_date,
        patient_sex=patient_sex,
        study_instance_uid=study_instance_uid,
        study_date=study_date,
        rows=rows,
        columns=columns,
        slices=slices,
        pixel_spacing=pixel_spacing,
        slice_thickness=slice_thickness,
        seed=seed,
        series_number=series_number,
        series_description=series_description,
    )


def _image_instance(
    series: _Series,
    index: int,
    *,
    sop_class_uid: str,
    pixels: npt.NDArray[np.uint16],
    attributes: Mapping[str, object],
) -> Dataset:
    """Build one single-frame image with the modules shared by CT and MR.

    Every instance gets freshly created elements: sharing DataElement objects between
    datasets would make an edit on one slice (e.g. de-identification in a test) leak into all.
    """
    series_uid = series.series_instance_uid
    sop_instance_uid = _uid("instance", series_uid, index)
    series_datetime = series.series_datetime
    content_time = series_datetime + timedelta(minutes=1)
    z = ((series.slices - 1) / 2 - index) * series.slice_thickness

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = _IMPLEMENTATION_CLASS_UID
    ds.file_meta.ImplementationVersionName = _IMPLEMENTATION_VERSION_NAME

    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.InstanceCreationDate = _da(content_time.date())
    ds.InstanceCreationTime = _tm(content_time.time())

    ds.PatientName = series.patient_name
    ds.PatientID = series.patient_id
    ds.PatientBirthDate = _da(series.patient_birth_date)
    ds.PatientSex = series.patient_sex
    ds.PatientAge = _patient_age(series.patient_birth_date, series.study_date)

    ds.StudyInstanceUID = series.study_instance_uid
    ds.StudyDate = _da(series.study_date)
    ds.StudyTime = _tm(_study_time(series.study_instance_uid))
    ds.StudyID = f"S{_stable_int('study-id', series.study_instance_uid) % 100_000:05d}"
    ds.AccessionNumber = f"A{_stable_int('accession', series.study_instance_uid) % 10**8:08d}"
    ds.ReferringPhysicianName = "Referrer^Demo"
    ds.StudyDescription = {"CT": "CT Thorax-Abdomen", "MR": "MR Head"}[series.modality]

    ds.Modality = series.modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series.series_number
    ds.SeriesDescription = series.series_description
    ds.SeriesDate = _da(series_datetime.date())
    ds.SeriesTime = _tm(series_datetime.time())
    ds.PatientPosition = "HFS"

    ds.Manufacturer = _MANUFACTURER
    ds.InstitutionName = _INSTITUTION_NAME
    ds.StationName = f"PHANTOM-{series.modality}"
    ds.ManufacturerModelName = f"Phantom {series.modality}"
    ds.DeviceSerialNumber = f"KP-{series.modality}-0001"
    ds.SoftwareVersions = _SOFTWARE_VERSIONS

    ds.FrameOfReferenceUID = _uid("frame-of-reference", series_uid)
    ds.PositionReferenceIndicator = ""

    ds.InstanceNumber = index + 1
    ds.AcquisitionNumber = 1
    ds.AcquisitionDate = _da(series_datetime.date())
    ds.AcquisitionTime = _tm(series_datetime.time())
    ds.ContentDate = _da(content_time.date())
    ds.ContentTime = _tm(content_time.time())
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"

    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [
        _ds(-(series.columns - 1) / 2 * series.pixel_spacing),
        _ds(-(series.rows - 1) / 2 * series.pixel_spacing),
        _ds(z),
    ]
    ds.PixelSpacing = [_ds(series.pixel_spacing), _ds(series.pixel_spacing)]
    ds.SliceThickness = _ds(series.slice_thickness)
    ds.SliceLocation = _ds(z)

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = series.rows
    ds.Columns = series.columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0

    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds[_PIXEL_DATA] = DataElement(_PIXEL_DATA, "OW", pixels.astype("<u2").tobytes())
    return ds


def _ct_instances(series: _Series) -> Iterator[Dataset]:
    anatomy = _Anatomy.from_seed(series.seed)
    grid = _Grid.of(series.rows, series.columns)
    noise_key = _stable_int("noise", series.series_instance_uid)
    attributes = {
        "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        "BodyPartExamined": "CHESTABDOMEN",
        "ProtocolName": "Thorax-Abdomen",
        "ScanOptions": "HELICAL MODE",
        "KVP": "120",
        "DataCollectionDiameter": "500",
        "ReconstructionDiameter": _ds(series.columns * series.pixel_spacing),
        "DistanceSourceToDetector": "1085.6",
        "DistanceSourceToPatient": "595",
        "GantryDetectorTilt": "0",
        "TableHeight": "160",
        "RotationDirection": "CW",
        "ExposureTime": "500",
        "XRayTubeCurrent": 200,
        "Exposure": 100,
        "FilterType": "BODY FILTER",
        "GeneratorPower": 24,
        "FocalSpots": "1.2",
        "ConvolutionKernel": "STANDARD",
        "RescaleIntercept": str(_CT_RESCALE_INTERCEPT),
        "RescaleSlope": "1",
        "RescaleType": "HU",
        "WindowCenter": "40",
        "WindowWidth": "400",
        "WindowCenterWidthExplanation": "SOFT TISSUE",
    }
    for index in range(series.slices):
        hu, _ = _thorax_abdomen(grid, anatomy, _slice_t(index, series.slices))
        rng = np.random.default_rng([series.seed, noise_key, index])
        hu += rng.standard_normal(grid.shape, dtype=np.float32) * np.float32(_CT_NOISE_HU)
        stored = np.clip(np.rint(hu) - _CT_RESCALE_INTERCEPT, 0, _MAX_STORED_VALUE)
        yield _image_instance(
            series,
            index,
            sop_class_uid=CTImageStorage,
            pixels=stored.astype(np.uint16),
            attributes=attributes,
        )


def _mr_instances(series: _Series) -> Iterator[Dataset]:
    head_size = float(np.random.default_rng([series.seed, _HEAD_STREAM]).uniform(0.92, 1.04))
    grid = _Grid.of(series.rows, series.columns)
    noise_key = _stable_int("noise", series.series_instance_uid)
    attributes = {
        "ImageType": ["ORIGINAL", "PRIMARY", "OTHER"],
        "BodyPartExamined": "HEAD",
        "ProtocolName": "T1 SE axial",
        "ScanningSequence": "SE",
        "SequenceVariant": "NONE",
        "ScanOptions": "",
        "MRAcquisitionType": "2D",
        "SequenceName": "se2d1",
        "AngioFlag": "N",
        "RepetitionTime": "500",
        "EchoTime": "12",
        "EchoTrainLength": 1,
        "EchoNumbers": 1,
        "NumberOfAverages": "1",
        "ImagingFrequency": "63.87",
        "ImagedNucleus": "1H",
        "MagneticFieldStrength": "1.5",
        "SpacingBetweenSlices": _ds(series.slice_thickness),
        "NumberOfPhaseEncodingSteps": series.rows,
        "PercentSampling": "100",
        "PercentPhaseFieldOfView": "100",
        "PixelBandwidth": "130",
        "ReceiveCoilName": "HEAD",
        "TransmitCoilName": "BODY",
        "AcquisitionMatrix": [0, series.columns, series.rows, 0],
        "InPlanePhaseEncodingDirection": "ROW",
        "FlipAngle": "90",
        "WindowCenter": "450",
        "WindowWidth": "900",
    }
    for index in range(series.slices):
        signal = _head(grid, head_size, _slice_t(index, series.slices))
        rng = np.random.default_rng([series.seed, noise_key, index])
        # Magnitude images have Rician noise: background is dark but never zero-mean.
        real, imaginary = rng.standard_normal((2, *grid.shape), dtype=np.float32) * _MR_NOISE
        magnitude = np.hypot(signal + real, imaginary)
        stored = np.clip(np.rint(magnitude), 0, _MAX_STORED_VALUE)
        yield _image_instance(
            series,
            index,
            sop_class_uid=MRImageStorage,
            pixels=stored.astype(np.uint16),
            attributes=attributes,
        )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def ct_series(
    *,
    patient_id: str = "KP-0001",
    patient_name: str = "Phantom^One",
    patient_birth_date: date = date(1965, 3, 2),
    patient_sex: str = "O",
    study_instance_uid: str | None = None,
    study_date: date = date(2024, 1, 15),
    rows: int = 128,
    columns: int = 128,
    slices: int = 48,
    pixel_spacing: float = 2.0,
    slice_thickness: float = 2.5,
    seed: int = 0,
    series_number: int = 1,
    series_description: str = "CT Thorax-Abdomen",
) -> list[Dataset]:
    """Axial thorax-abdomen CT phantom series, one Part 10-ready dataset per slice.

    Without ``study_instance_uid`` the study UID is derived from patient, date and seed; pass
    one to put several series into the same study. Use the same ``seed`` with
    :func:`ct_segmentation` to get labels for this series.
    """
    series = _series(
        "CT",
        patient_id=patient_id,
        patient_name=patient_name,
        patient_birth_date=patient_birth_date,
        patient_sex=patient_sex,
        study_instance_uid=study_instance_uid,
        study_date=study_date,
        rows=rows,
        columns=columns,
        slices=slices,
        pixel_spacing=pixel_spacing,
        slice_thickness=slice_thickness,
        seed=seed,
        series_number=series_number,
        series_description=series_description,
    )
    return list(_ct_instances(series))


def mr_series(
    *,
    patient_id: str = "KP-0001",
    patient_name: str = "Phantom^One",
    patient_birth_date: date = date(1965, 3, 2),
    patient_sex: str = "O",
    study_instance_uid: str | None = None,
    study_date: date = date(2024, 1, 15),
    rows: int = 128,
    columns: int = 128,
    slices: int = 24,
    pixel_spacing: float = 1.8,
    slice_thickness: float = 5.0,
    seed: int = 0,
    series_number: int = 1,
    series_description: str = "MR Head T1w SE",
) -> list[Dataset]:
    """Axial T1-weighted head MR phantom series; geometry and identity rules as in
    :func:`ct_series`, intensities are arbitrary MR signal units without rescaling."""
    series = _series(
        "MR",
        patient_id=patient_id,
        patient_name=patient_name,
        patient_birth_date=patient_birth_date,
        patient_sex=patient_sex,
        study_instance_uid=study_instance_uid,
        study_date=study_date,
        rows=rows,
        columns=columns,
        slices=slices,
        pixel_spacing=pixel_spacing,
        slice_thickness=slice_thickness,
        seed=seed,
        series_number=series_number,
        series_description=series_description,
    )
    return list(_mr_instances(series))


_SEGMENT_TYPES: Final = {
    "body": codes.SCT.EntireBody,
    "lungs": codes.SCT.Lung,
    "bones": codes.SCT.Bone,
    "liver": codes.SCT.Liver,
}

# Share of slice pixels allowed to disagree with the regenerated phantom by more than six noise
# standard deviations; a wrong seed moves organ borders and exceeds this by orders of magnitude.
_MAX_MISMATCH_FRACTION: Final = 1e-3


def _check_phantom_matches(ds: Dataset, index: int, slices: int, seed: int) -> None:
    """Fail loudly instead of writing labels that do not fit the image, which a wrong ``seed``
    would otherwise do silently."""
    expected = phantom_slice(index, rows=ds.Rows, columns=ds.Columns, slices=slices, seed=seed)
    actual = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    mismatch = np.abs(actual - expected.hu) > 6 * _CT_NOISE_HU
    if mismatch.mean() > _MAX_MISMATCH_FRACTION:
        raise ValueError(
            f"CT pixel data does not match the phantom for seed={seed}; "
            "pass the seed that was given to ct_series"
        )


def ct_segmentation(
    ct: Sequence[Dataset],
    *,
    seed: int = 0,
    labels: Sequence[str] = SEGMENT_LABELS,
) -> hd.seg.Segmentation:
    """Binary DICOM SEG with the phantom's ground-truth labels for a :func:`ct_series` series.

    ``ct`` must be the complete series (any order; datasets without PixelData are fine) and
    ``seed`` the one it was generated with: the labels are recomputed from the phantom, so a
    middle slice is compared against the pixel data when present.
    """
    if not ct:
        raise ValueError("ct must contain the datasets of one CT series")
    unknown = [label for label in labels if label not in _SEGMENT_TYPES]
    if unknown or not labels or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct values from {SEGMENT_LABELS}, got {labels}")
    slices = len(ct)
    indices = [int(ds.InstanceNumber) - 1 for ds in ct]
    # ct_series centres the slab on z=0, so a truncated series shows in the positions even
    # when the instance numbers that are left still count up from 1.
    expected_z = [
        ((slices - 1) / 2 - index) * float(ds.SliceThickness)
        for index, ds in zip(indices, ct, strict=True)
    ]
    actual_z = [float(ds.ImagePositionPatient[2]) for ds in ct]
    if sorted(indices) != list(range(slices)) or not np.allclose(actual_z, expected_z, atol=1e-3):
        raise ValueError("ct must be one complete series as returned by ct_series")

    first = ct[0]
    middle = indices.index(slices // 2)
    if "PixelData" in ct[middle]:
        _check_phantom_matches(ct[middle], slices // 2, slices, seed)

    pixel_array = np.zeros((slices, first.Rows, first.Columns, len(labels)), dtype=np.bool_)
    for frame, index in enumerate(indices):
        masks = phantom_slice(
            index, rows=first.Rows, columns=first.Columns, slices=slices, seed=seed
        ).masks
        for channel, label in enumerate(labels):
            pixel_array[frame, :, :, channel] = masks[label]

    algorithm = hd.AlgorithmIdentificationSequence(
        name="kaapana synthetic phantom",
        family=codes.cid7162.MorphologicalOperations,
        version=GENERATOR_VERSION,
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=codes.cid7150.AnatomicalStructure,
            segmented_property_type=_SEGMENT_TYPES[label],
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for number, label in enumerate(labels, start=1)
    ]

    series_uid = _uid("seg-series", first.SeriesInstanceUID, seed, *labels)
    created = datetime.combine(DA(first.SeriesDate), TM(first.SeriesTime)) + timedelta(minutes=30)
    seg = hd.seg.Segmentation(
        source_images=list(ct),
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_uid,
        series_number=int(first.SeriesNumber) + 100,
        sop_instance_uid=_uid("seg-instance", series_uid),
        instance_number=1,
        manufacturer=_MANUFACTURER,
        manufacturer_model_name="Phantom SEG",
        software_versions=_SOFTWARE_VERSIONS,
        device_serial_number="KP-SEG-0001",
        content_description="Ground truth of the synthetic phantom",
        content_label="PHANTOM",
        series_description=f"SEG {first.get('SeriesDescription', '')}".strip()[:64],
        series_date=created.date(),
        series_time=created.time(),
        content_date=created.date(),
        content_time=created.time(),
    )
    _pin_generated_values(seg, created)
    return seg


def _pin_generated_values(seg: Dataset, created: datetime) -> None:
    """Replace the values highdicom takes from the clock and random UIDs, which would
    otherwise make every SEG differ byte-wise from the previous run."""
    seg.InstanceCreationDate = _da(created.date())
    seg.InstanceCreationTime = _tm(created.time())
    for item in seg.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = created.strftime("%Y%m%d%H%M%S")
    dimension_uid = _uid("dimension-organization", seg.SOPInstanceUID)
    for item in [*seg.DimensionOrganizationSequence, *seg.DimensionIndexSequence]:
        item.DimensionOrganizationUID = dimension_uid


@dataclass(frozen=True, slots=True)
class _CohortPatient:
    patient_id: str
    patient_name: str
    patient_birth_date: date
    patient_sex: str
    seed: int
    ct_dates: tuple[date, ...]
    mr_date: date | None


def _cohort_patient(index: int, seed: int) -> _CohortPatient:
    """Patient ``index`` of the cohort. Study counts follow a fixed rule so callers can rely
    on the composition: even indices get a follow-up CT, every third patient (index 1, 4, …)
    an MR study."""
    rng = np.random.default_rng([seed, _COHORT_STREAM, index])
    baseline = date(2022, 1, 3) + timedelta(days=int(rng.integers(0, 700)))
    follow_up = baseline + timedelta(days=int(rng.integers(90, 271)))
    mr_date = baseline + timedelta(days=int(rng.integers(7, 61)))
    return _CohortPatient(
        patient_id=f"KP{seed:02d}-{index + 1:04d}",
        patient_name=f"Phantom{index + 1}^{_GIVEN_NAMES[index % len(_GIVEN_NAMES)]}",
        patient_birth_date=date(int(rng.integers(1940, 1996)), int(rng.integers(1, 13)), 15),
        patient_sex="FM"[index % 2],
        seed=int(np.random.SeedSequence([seed, index]).generate_state(1)[0]),
        ct_dates=(baseline, follow_up) if index % 2 == 0 else (baseline,),
        mr_date=mr_date if index % 3 == 1 else None,
    )


def _header_copy(ds: Dataset) -> Dataset:
    """Metadata-only copy that is enough for highdicom and immune to callers editing or
    dropping the yielded dataset before the SEG is built."""
    header = copy.deepcopy(Dataset({elem.tag: elem for elem in ds if elem.tag != _PIXEL_DATA}))
    header.file_meta = copy.deepcopy(ds.file_meta)
    return header


def _cohort_series(
    modality: str, patient: _CohortPatient, study_date: date, rows: int, columns: int, slices: int
) -> _Series:
    ct = modality == "CT"
    return _series(
        modality,
        patient_id=patient.patient_id,
        patient_name=patient.patient_name,
        patient_birth_date=patient.patient_birth_date,
        patient_sex=patient.patient_sex,
        study_instance_uid=None,
        study_date=study_date,
        rows=rows,
        columns=columns,
        slices=slices,
        pixel_spacing=2.0 if ct else 1.8,
        slice_thickness=2.5 if ct else 5.0,
        seed=patient.seed,
        series_number=1,
        series_description="CT Thorax-Abdomen" if ct else "MR Head T1w SE",
    )


def demo_cohort(
    *, patients: int = 3, seed: int = 0, rows: int = 128, columns: int = 128, slices: int = 32
) -> Iterator[Dataset]:
    """Yield a small multi-patient archive one dataset at a time, so large cohorts can be
    streamed to disk or a PACS without being held in memory.

    Each patient has one CT study, or two on different dates for even patient indices; each
    CT study holds a CT series (``slices`` instances) and its SEG. Patients with index 1, 4,
    7, … also get an MR head study with ``slices`` instances. A patient's anatomy is the same
    in all of their studies.
    """
    for index in range(patients):
        patient = _cohort_patient(index, seed)
        for study_date in patient.ct_dates:
            headers = []
            for ds in _ct_instances(
                _cohort_series("CT", patient, study_date, rows, columns, slices)
            ):
                headers.append(_header_copy(ds))
                yield ds
            yield ct_segmentation(headers, seed=patient.seed)
        if patient.mr_date is not None:
            yield from _mr_instances(
                _cohort_series("MR", patient, patient.mr_date, rows, columns, slices)
            )


def _path_component(value: str) -> str:
    """Keep patient IDs from escaping the target folder or producing invalid file names."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", value) or "_"


def write_datasets(datasets: Iterable[Dataset], directory: Path) -> list[Path]:
    """Write datasets as Part 10 files laid out like an archive export:
    ``<directory>/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``.

    Characters other than letters, digits, ``-`` and ``_`` in the PatientID become ``_``.
    Datasets are written as they arrive, so a lazy iterable such as :func:`demo_cohort`
    never needs to fit in memory. Returns the paths in input order.
    """
    paths = []
    for ds in datasets:
        folder = (
            Path(directory)
            / _path_component(str(ds.PatientID))
            / ds.StudyInstanceUID
            / ds.SeriesInstanceUID
        )
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
