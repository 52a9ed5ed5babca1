"""NIfTI images and label maps into DICOM: CT/MR series with their geometry, labels as SEG.

Two layouts are read. A plain folder holds NIfTI files and a ``metadata.json`` naming per case
the image, an optional label map and the patient/study attributes (:class:`FolderMetadata`);
an nnU-Net v2 dataset holds ``dataset.json``, ``imagesTr/<case>_<channel>.nii.gz`` (and
``imagesTs``) and ``labelsTr/<case>.nii.gz``. Each channel becomes a series in one study per
case; a label map becomes a SEG over the case's first channel.

Geometry follows the NIfTI affine: voxel axes (i, j, k) become columns, rows and slices, and
RAS+ becomes DICOM's LPS+, so dcm2niix gives the same affine back. UIDs derive from the file's
content and the case, so importing the same files again yields the same objects.
"""

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import nibabel as nib
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from kaapana.errors import InvalidInput
from kaapana.operators.nifti import nifti_to_seg
from kaapana.operators.series import SegmentSpec

__all__ = [
    "FolderCase",
    "FolderMetadata",
    "ImportNiftiParameters",
    "ImportedCase",
    "import_folder",
    "import_nifti",
    "import_nnunet",
    "nifti_to_series",
]

_ORTHOGONAL_TOLERANCE: Final = 1e-4
_INT16: Final = np.iinfo(np.int16)


class ImportNiftiParameters(BaseModel):
    """Options of import-nifti."""

    model_config = ConfigDict(extra="forbid")

    layout: Literal["auto", "folder", "nnunet"] = Field(
        default="auto", description="'auto' reads dataset.json if present, else metadata.json."
    )
    modality: Literal["CT", "MR"] = Field(
        default="CT", description="Modality of images whose layout does not say."
    )
    study_date: dt.date = Field(
        default=dt.date(2000, 1, 1), description="StudyDate of cases that carry none."
    )


class FolderCase(BaseModel):
    """One case of a plain folder's ``metadata.json``; paths are relative to the folder."""

    model_config = ConfigDict(extra="forbid")

    image: str
    label_map: str | None = None
    patient_id: str = Field(min_length=1, max_length=64)
    patient_name: str = ""
    study_date: dt.date | None = None
    study_description: str = Field(default="", max_length=64)
    series_description: str = Field(default="", max_length=64)
    modality: Literal["CT", "MR"] | None = None


class FolderMetadata(BaseModel):
    """``metadata.json``: the cases and the meaning of each label value."""

    model_config = ConfigDict(extra="forbid")

    cases: list[FolderCase] = Field(min_length=1)
    labels: dict[int, str] = Field(default_factory=dict, description="Label value -> name.")


@dataclass
class ImportedCase:
    case: str
    series: list[list[Path]] = field(default_factory=list)
    segmentation: Path | None = None


def _uid(*parts: object) -> UID:
    return generate_uid(entropy_srcs=["kaapana.operators.import_nifti", *map(str, parts)])


def _stored(
    data: npt.NDArray[np.float32], modality: str
) -> tuple[npt.NDArray[np.int16], float, float]:
    """Stored values and (slope, intercept): integers as they are when they fit, anything
    else scaled linearly onto the int16 range."""
    low, high = float(data.min()), float(data.max())
    if np.array_equal(data, np.rint(data)) and _INT16.min <= low and high <= _INT16.max:
        return data.astype(np.int16), 1.0, 0.0
    if modality == "MR":
        # The MR Image IOD has no rescale attributes: MR values, arbitrary units anyway, are
        # scaled onto 0..32767 and stored without a slope.
        scaled = (data - low) / ((high - low) or 1.0) * _INT16.max
        return np.rint(scaled).astype(np.int16), 1.0, 0.0
    slope = (high - low) / (_INT16.max - _INT16.min) or 1.0
    stored = np.rint((data - low) / slope + _INT16.min).astype(np.int16)
    return stored, slope, low - _INT16.min * slope


def _geometry(affine: npt.NDArray[np.float64]) -> tuple[list[float], list[float], float]:
    """ImageOrientationPatient, PixelSpacing and slice step of a NIfTI affine in LPS+."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    axes = lps[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    unit = axes / spacing
    in_plane = abs(float(unit[:, 0] @ unit[:, 1]))
    tilt = 1.0 - abs(float(np.cross(unit[:, 0], unit[:, 1]) @ unit[:, 2]))
    if in_plane > _ORTHOGONAL_TOLERANCE or tilt > _ORTHOGONAL_TOLERANCE:
        raise InvalidInput(
            f"the NIfTI affine is sheared or its slices are tilted: {np.round(affine, 4).tolist()}"
        )
    orientation = [float(value) for value in (*unit[:, 0], *unit[:, 1])]
    return orientation, [float(spacing[1]), float(spacing[0])], float(spacing[2])


def nifti_to_series(
    path: Path,
    *,
    modality: str,
    patient_id: str,
    patient_name: str = "",
    study_instance_uid: str,
    study_date: dt.date,
    study_description: str = "",
    series_description: str = "",
    series_number: int = 1,
) -> list[Dataset]:
    """A 3-D NIfTI image as one single-frame CT or MR series (one dataset per slice)."""
    try:
        image = nib.load(path)
    except Exception as exc:
        raise InvalidInput(f"'{path.name}' is not a readable NIfTI file: {exc}") from exc
    if len(image.shape) != 3:
        raise InvalidInput(f"'{path.name}' must be a 3-D image, got shape {image.shape}")
    data = np.asarray(image.get_fdata(dtype=np.float32))
    orientation, pixel_spacing, slice_step = _geometry(image.affine)
    stored, slope, intercept = _stored(data, modality)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    series_uid = _uid("series", digest, study_instance_uid, series_number)
    frame_of_reference = _uid("frame-of-reference", study_instance_uid)
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    datasets = []
    for k in range(data.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = _uid("instance", series_uid, k)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_instance_uid, series_uid
        ds.FrameOfReferenceUID = frame_of_reference
        ds.Modality = modality
        ds.PatientID, ds.PatientName = patient_id, patient_name
        ds.PatientBirthDate = ds.PatientSex = ds.AccessionNumber = ds.ReferringPhysicianName = ""
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "000000"
        ds.StudyID, ds.StudyDescription = "1", study_description
        ds.SeriesNumber, ds.SeriesDescription = series_number, series_description
        ds.InstanceNumber = k + 1
        ds.Manufacturer, ds.PatientPosition, ds.PositionReferenceIndicator = "", "", ""
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.ImageOrientationPatient = [round(value, 8) for value in orientation]
        position = lps @ np.array([0.0, 0.0, float(k), 1.0])
        ds.ImagePositionPatient = [round(float(value), 6) for value in position[:3]]
        ds.PixelSpacing = [round(value, 8) for value in pixel_spacing]
        ds.SliceThickness = ds.SpacingBetweenSlices = round(slice_step, 8)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        if modality == "CT":
            ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "HU"
            ds.KVP = ds.AcquisitionNumber = ""
        else:
            ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "RM", "NONE", ""
            ds.MRAcquisitionType = ds.EchoTime = ds.EchoTrainLength = ""
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        datasets.append(ds)
    return datasets


_CODE_NAME: Final = re.compile(r"[^0-9a-zA-Z]+")


def _segment_spec(name: str) -> SegmentSpec:
    """The SNOMED code pydicom knows for an anatomical label name ('lung', 'left_kidney'),
    else the generic 'Tissue', so any label can be written while known ones are coded well."""
    words = [word for word in _CODE_NAME.split(name) if word]
    keyword = "".join(word.capitalize() for word in words)
    for candidate in (keyword, keyword.removesuffix("s")):
        if candidate and candidate in codes.SCT.dir():
            structure = getattr(codes.SCT, candidate)
            return SegmentSpec(name, codes.cid7150.AnatomicalStructure, structure)
    return SegmentSpec(name, codes.cid7150.Tissue, codes.SCT.Tissue)


def _write(datasets: Sequence[Dataset], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _import_case(
    case: str,
    images: Sequence[tuple[Path, str, str]],
    label_map: Path | None,
    labels: Mapping[int, str],
    out_dir: Path,
    *,
    patient_name: str = "",
    study_date: dt.date,
    study_description: str = "",
) -> ImportedCase:
    """``images`` are (path, modality, series description) per channel."""
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for path, _, _ in images]
    study_uid = _uid("study", case, *digests)
    result = ImportedCase(case=case)
    first: list[Dataset] = []
    for number, (path, modality, description) in enumerate(images, start=1):
        series = nifti_to_series(
            path,
            modality=modality,
            patient_id=case,
            patient_name=patient_name,
            study_instance_uid=study_uid,
            study_date=study_date,
            study_description=study_description,
            series_description=description,
            series_number=number,
        )
        first = first or series
        result.series.append(_write(series, out_dir / case / series[0].SeriesInstanceUID))
    if label_map is not None:
        if not labels:
            raise InvalidInput(f"case '{case}' has a label map but no label names are given")
        segments = [(value, _segment_spec(name)) for value, name in sorted(labels.items())]
        seg = nifti_to_seg(label_map, first, segments)
        result.segmentation = _write([seg], out_dir / case / seg.SeriesInstanceUID)[0]
    return result


def import_folder(
    folder: Path, out_dir: Path, parameters: ImportNiftiParameters | None = None
) -> list[ImportedCase]:
    """Import a plain folder described by its ``metadata.json``."""
    parameters = parameters or ImportNiftiParameters()
    try:
        metadata = FolderMetadata.model_validate_json((folder / "metadata.json").read_text())
    except (OSError, ValidationError) as exc:
        raise InvalidInput(f"'{folder / 'metadata.json'}' is not valid: {exc}") from exc
    results = []
    for item in metadata.cases:
        image = _inside(folder, item.image)
        results.append(
            _import_case(
                item.patient_id,
                [(image, item.modality or parameters.modality, item.series_description)],
                _inside(folder, item.label_map) if item.label_map else None,
                metadata.labels,
                out_dir,
                patient_name=item.patient_name,
                study_date=item.study_date or parameters.study_date,
                study_description=item.study_description,
            )
        )
    return results


def _inside(folder: Path, relative: str) -> Path:
    """A path named by a metadata file, which must stay inside the imported folder."""
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file():
        raise InvalidInput(f"'{relative}' is not a file inside '{folder}'")
    return path


def import_nnunet(
    folder: Path, out_dir: Path, parameters: ImportNiftiParameters | None = None
) -> list[ImportedCase]:
    """Import an nnU-Net v2 raw dataset (``dataset.json``, ``imagesTr``, ``labelsTr``,
    optionally ``imagesTs``)."""
    parameters = parameters or ImportNiftiParameters()
    try:
        description = json.loads((folder / "dataset.json").read_text())
        channels = {int(key): str(name) for key, name in description["channel_names"].items()}
        labels = {int(value): str(name) for name, value in description["labels"].items()}
        ending = str(description.get("file_ending", ".nii.gz"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"'{folder / 'dataset.json'}' is not an nnU-Net v2 dataset.json: {exc}"
        ) from exc
    labels.pop(0, None)
    results = []
    for images_dir, labels_dir in (("imagesTr", "labelsTr"), ("imagesTs", None)):
        cases = sorted(
            path.name.removesuffix(f"_0000{ending}")
            for path in (folder / images_dir).glob(f"*_0000{ending}")
        )
        for case in cases:
            images = []
            for channel, name in sorted(channels.items()):
                path = folder / images_dir / f"{case}_{channel:04d}{ending}"
                if not path.is_file():
                    raise InvalidInput(f"case '{case}' lacks channel {channel} ('{path.name}')")
                modality = "CT" if name.upper() == "CT" else "MR"
                images.append((path, modality, name))
            label_map = folder / labels_dir / f"{case}{ending}" if labels_dir else None
            results.append(
                _import_case(
                    case,
                    images,
                    label_map if label_map is not None and label_map.is_file() else None,
                    labels,
                    out_dir,
                    study_date=parameters.study_date,
                    study_description=str(description.get("name", ""))[:64],
                )
            )
    if not results:
        raise InvalidInput(f"'{folder}' holds no cases named imagesTr/<case>_0000{ending}")
    return results


def import_nifti(
    folder: Path, out_dir: Path, parameters: ImportNiftiParameters | None = None
) -> list[ImportedCase]:
    """Import ``folder`` in the layout the parameters name, or the one it holds ('auto')."""
    parameters = parameters or ImportNiftiParameters()
    layout = parameters.layout
    if layout == "auto":
        layout = "nnunet" if (folder / "dataset.json").is_file() else "folder"
    if layout == "nnunet":
        return import_nnunet(folder, out_dir, parameters)
    return import_folder(folder, out_dir, parameters)
