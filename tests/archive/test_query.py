"""The query service: PS3.4 C.2.2.2 matching, computed attributes, visibility and retrieval sets."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from pydicom import Dataset, config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from kaapana.archive.attributes import (
    COMPUTED_ATTRIBUTES,
    INDEX_COLUMNS,
    InformationModelValues,
    query_level,
)
from kaapana.archive.matching import Equal, Range, Wildcard, parse_condition
from kaapana.archive.query import ArchiveQuery
from kaapana.errors import InvalidInput
from kaapana.platform import Platform
from tests.helpers import part10

PATIENT_ROOT = InformationModelValues.PATIENT_ROOT
STUDY_ROOT = InformationModelValues.STUDY_ROOT


def uid(name: str) -> str:
    return generate_uid(entropy_srcs=["kaapana-query-test", name])


def _element(keyword: str, value: Any) -> DataElement:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return DataElement(tag, dictionary_VR(tag), value, validation_mode=config.IGNORE)


def identifier(level: str | None, **keys: Any) -> Dataset:
    """A C-FIND identifier; values as an SCU sends them, including non-standard ones."""
    ds = Dataset()
    if level is not None:
        ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        ds.add(_element(keyword, value))
    return ds


def instance(**attributes: Any) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 32
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(256)) * 8  # 2048 bytes: above the bulk data threshold
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return part10(ds)


def code(value: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "99TEST"
    item.CodeMeaning = f"procedure {value}"
    return item


PATIENTS = {
    "P1": {"PatientName": "Doe^John", "PatientBirthDate": "19700101", "PatientSex": "M"},
    "P2": {"PatientName": "Müller^Anna", "PatientBirthDate": "19800202", "PatientSex": "F"},
    "P_3%": {"PatientName": "doe^jane", "PatientBirthDate": "19900303", "PatientSex": "F"},
    "PX3": {"PatientName": "Roe^Richard", "PatientBirthDate": "19600404", "PatientSex": "M"},
    "P6": {"PatientName": "Other^Person", "PatientBirthDate": "19500505", "PatientSex": "O"},
}
# study name: patient, date, time, description, extra study attributes
STUDIES = {
    "S1": ("P1", "20200115", "083000", "CT Thorax", {"Manufacturer": "ACME Medical"}),
    "S2": ("P1", "20210310", "141500", "MR Head", {"Manufacturer": "Other Corp"}),
    "S3": ("P2", "20200620", "101010", "CT Abdomen", {"Manufacturer": "ACME Medical"}),
    "S4": ("P_3%", "20191231", "235959", "ct thorax", {}),
    "S5": ("PX3", "20220202", "120000", "X-Ray", {}),
    "S6": ("P6", "20200301", "090000", "CT Other", {}),
}
# series name: study, modality, SOP class, series number, instances
SERIES = {
    "S1-CT": ("S1", "CT", CTImageStorage, 1, 3),
    "S1-MR": ("S1", "MR", MRImageStorage, 2, 2),
    "S2-MR": ("S2", "MR", MRImageStorage, 1, 1),
    "S3-CT": ("S3", "CT", CTImageStorage, 1, 1),
    "S4-CT": ("S4", "CT", CTImageStorage, 1, 1),
    "S5-CR": ("S5", "CR", ComputedRadiographyImageStorage, 1, 1),
    "S6-CT": ("S6", "CT", CTImageStorage, 1, 1),
}
OTHER_ONLY = {"S6-CT"}  # stored through project "other" only
SHARED = {"S1-MR"}  # stored to the admin project and again to "other"


def scope(project_pk: int | None) -> frozenset[int] | None:
    return None if project_pk is None else frozenset({project_pk})


@dataclass
class Loaded:
    platform: Platform
    other_pk: int

    def find(
        self,
        model: InformationModelValues,
        ident: Dataset,
        project_pk: int | None = None,
        **kw: Any,
    ) -> list[Dataset]:
        query = ArchiveQuery(self.platform.engine)
        return list(query.find(model=model, identifier=ident, projects=scope(project_pk), **kw))


def series_instances(series: str) -> Iterable[bytes]:
    study, modality, sop_class, number, count = SERIES[series]
    patient, date, time, description, extra = STUDIES[study]
    for index in range(1, count + 1):
        yield instance(
            PatientID=patient,
            **PATIENTS[patient],
            StudyInstanceUID=uid(study),
            StudyDate=date,
            StudyTime=time,
            StudyDescription=description,
            AccessionNumber=f"A-{study}",
            ProcedureCodeSequence=[code(f"X-{study}")],
            **extra,
            SeriesInstanceUID=uid(series),
            Modality=modality,
            SeriesNumber=number,
            SOPClassUID=sop_class,
            SOPInstanceUID=uid(f"{series}/{index}"),
            InstanceNumber=index,
        )


@pytest.fixture
def loaded(platform: Platform) -> Loaded:
    archive = platform.archive
    archive.projects.create("other", ae_title="OTHER")
    admin, other = archive.target(), archive.target("other")
    for series in SERIES:
        for data in series_instances(series):
            if series not in OTHER_ONLY:
                archive.store_bytes(data, admin)
            if series in OTHER_ONLY | SHARED:
                archive.store_bytes(data, other)
    return Loaded(platform, other.project_pk)


def uids(results: list[Dataset], keyword: str) -> list[str]:
    return [str(result[keyword].value) for result in results]


def values(ds: Dataset, keyword: str) -> list[str]:
    """All values of a possibly multi-valued attribute (pydicom gives VM 1 as a bare value)."""
    element = ds[keyword]
    return [str(value) for value in element.value] if element.VM > 1 else [str(element.value)]


def test_study_level_returns_only_the_requested_keys(loaded: Loaded) -> None:
    results = loaded.find(
        STUDY_ROOT, identifier("STUDY", PatientID="P1", StudyDate="", StudyDescription="")
    )
    assert uids(results, "StudyInstanceUID") == [uid("S1"), uid("S2")]  # by date
    assert {element.keyword for element in results[0]} == {
        "QueryRetrieveLevel",
        "PatientID",
        "StudyDate",
        "StudyDescription",
        "StudyInstanceUID",
    }
    assert results[0].StudyDescription == "CT Thorax"
    assert results[0].QueryRetrieveLevel == "STUDY"


def test_patient_root_responses_carry_the_unique_keys_of_every_level(loaded: Loaded) -> None:
    results = loaded.find(
        PATIENT_ROOT,
        identifier("IMAGE", SeriesInstanceUID=uid("S1-CT"), InstanceNumber=None),
    )
    assert [int(result.InstanceNumber) for result in results] == [1, 2, 3]
    first = results[0]
    assert first.PatientID == "P1"
    assert first.StudyInstanceUID == uid("S1")
    assert first.SeriesInstanceUID == uid("S1-CT")
    assert first.SOPInstanceUID == uid("S1-CT/1")


def test_study_root_responses_have_no_patient_unique_key(loaded: Loaded) -> None:
    results = loaded.find(STUDY_ROOT, identifier("SERIES", StudyInstanceUID=uid("S1")))
    assert uids(results, "SeriesInstanceUID") == [uid("S1-CT"), uid("S1-MR")]
    assert "PatientID" not in results[0]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"StudyDescription": "CT*"}, ["S1", "S6", "S3"]),
        ({"StudyDescription": "ct*"}, ["S4"]),  # case-sensitive
        ({"StudyDescription": "?R Head"}, ["S2"]),
        ({"StudyDescription": "*"}, ["S4", "S1", "S6", "S3", "S2", "S5"]),  # universal
        ({"PatientName": "doe*"}, ["S4", "S1", "S2"]),  # PN ignores case
        ({"PatientName": "DOE^JOHN"}, ["S1", "S2"]),
        ({"PatientName": "Doe^John^^^"}, ["S1", "S2"]),  # empty trailing components
        ({"PatientID": "P_3*"}, ["S4"]),  # '_' is no SQL wildcard here
        ({"PatientID": "P?3*"}, ["S4", "S5"]),
        ({"PatientID": "P_3%"}, ["S4"]),  # nor is '%'
        ({"PatientID": "P%"}, []),
        ({"AccessionNumber": ["A-S1", "A-S3"]}, ["S1", "S3"]),  # value list: any of them
        ({"PatientSex": "F", "StudyDescription": "CT*"}, ["S3"]),
    ],
)
def test_single_value_and_wildcard_matching(
    loaded: Loaded, keys: dict[str, Any], expected: list[str]
) -> None:
    results = loaded.find(STUDY_ROOT, identifier("STUDY", **keys))
    assert uids(results, "StudyInstanceUID") == [uid(name) for name in expected]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"StudyDate": "20200101-20201231"}, ["S1", "S6", "S3"]),
        ({"StudyDate": "-20191231"}, ["S4"]),
        ({"StudyDate": "20210101-"}, ["S2", "S5"]),
        ({"StudyDate": "20200115"}, ["S1"]),
        ({"StudyDate": "-2019"}, ["S4"]),  # a partial upper bound takes the whole year
        ({"StudyDate": "2021-"}, ["S2", "S5"]),
        ({"StudyTime": "0800-1000"}, ["S1", "S6"]),
        ({"StudyTime": "-1200"}, ["S1", "S6", "S3", "S5"]),  # 12:00:00 is in "-1200"
        ({"StudyDate": "20200101-20201231", "StudyTime": "1000-"}, ["S3"]),
    ],
)
def test_date_and_time_range_matching(
    loaded: Loaded, keys: dict[str, str], expected: list[str]
) -> None:
    results = loaded.find(STUDY_ROOT, identifier("STUDY", **keys))
    assert uids(results, "StudyInstanceUID") == [uid(name) for name in expected]


def test_an_empty_stored_date_never_matches_a_range(loaded: Loaded) -> None:
    undated = instance(
        PatientID="P9",
        StudyInstanceUID=uid("S9"),
        StudyDate="",
        SeriesInstanceUID=uid("S9-CT"),
        SOPInstanceUID=uid("S9-CT/1"),
    )
    loaded.platform.archive.store_bytes(undated, loaded.platform.archive.target())
    ranged = loaded.find(STUDY_ROOT, identifier("STUDY", StudyDate="-20301231"))
    assert uid("S9") not in uids(ranged, "StudyInstanceUID")
    universal = loaded.find(STUDY_ROOT, identifier("STUDY", StudyDate=""))
    assert uid("S9") in uids(universal, "StudyInstanceUID")


def test_uid_list_matching(loaded: Loaded) -> None:
    results = loaded.find(
        PATIENT_ROOT,
        identifier("SERIES", SeriesInstanceUID=[uid("S3-CT"), uid("S1-MR"), uid("absent")]),
    )
    assert uids(results, "SeriesInstanceUID") == [uid("S1-MR"), uid("S3-CT")]


def test_modalities_in_study_matches_any_series_and_counts_all(loaded: Loaded) -> None:
    results = loaded.find(
        STUDY_ROOT,
        identifier(
            "STUDY",
            ModalitiesInStudy="MR",
            NumberOfStudyRelatedSeries=None,
            NumberOfStudyRelatedInstances=None,
        ),
    )
    assert uids(results, "StudyInstanceUID") == [uid("S1"), uid("S2")]
    s1 = results[0]
    assert values(s1, "ModalitiesInStudy") == ["CT", "MR"]
    assert int(s1.NumberOfStudyRelatedSeries) == 2
    assert int(s1.NumberOfStudyRelatedInstances) == 5
    listed = loaded.find(STUDY_ROOT, identifier("STUDY", ModalitiesInStudy=["CR", "MR"]))
    assert uids(listed, "StudyInstanceUID") == [uid("S1"), uid("S2"), uid("S5")]


def test_sop_classes_in_study(loaded: Loaded) -> None:
    results = loaded.find(
        STUDY_ROOT, identifier("STUDY", SOPClassesInStudy=ComputedRadiographyImageStorage)
    )
    assert uids(results, "StudyInstanceUID") == [uid("S5")]
    s1 = loaded.find(
        STUDY_ROOT, identifier("STUDY", StudyInstanceUID=uid("S1"), SOPClassesInStudy=None)
    )
    assert values(s1[0], "SOPClassesInStudy") == sorted([CTImageStorage, MRImageStorage])


def test_patient_level_counts(loaded: Loaded) -> None:
    results = loaded.find(
        PATIENT_ROOT,
        identifier(
            "PATIENT",
            PatientName=None,
            NumberOfPatientRelatedStudies=None,
            NumberOfPatientRelatedSeries=None,
            NumberOfPatientRelatedInstances=None,
        ),
    )
    assert sorted(uids(results, "PatientID")) == ["P1", "P2", "P6", "PX3", "P_3%"]
    (p1,) = (result for result in results if result.PatientID == "P1")
    assert p1.PatientName == "Doe^John"
    assert int(p1.NumberOfPatientRelatedStudies) == 2
    assert int(p1.NumberOfPatientRelatedSeries) == 3
    assert int(p1.NumberOfPatientRelatedInstances) == 6


def test_a_project_sees_only_its_series_and_counts_only_those(loaded: Loaded) -> None:
    keys = {"NumberOfStudyRelatedSeries": None, "ModalitiesInStudy": None}
    studies = loaded.find(STUDY_ROOT, identifier("STUDY", **keys), project_pk=loaded.other_pk)
    assert uids(studies, "StudyInstanceUID") == [uid("S1"), uid("S6")]
    assert int(studies[0].NumberOfStudyRelatedSeries) == 1  # S1-CT is not shared
    assert values(studies[0], "ModalitiesInStudy") == ["MR"]
    assert (
        loaded.find(
            STUDY_ROOT,
            identifier("STUDY", ModalitiesInStudy="CT", StudyInstanceUID=uid("S1")),
            project_pk=loaded.other_pk,
        )
        == []
    )
    patients = loaded.find(
        PATIENT_ROOT,
        identifier("PATIENT", NumberOfPatientRelatedInstances=None),
        project_pk=loaded.other_pk,
    )
    assert uids(patients, "PatientID") == ["P1", "P6"]
    assert int(patients[0].NumberOfPatientRelatedInstances) == 2
    images = loaded.find(
        STUDY_ROOT, identifier("IMAGE", StudyInstanceUID=uid("S1")), project_pk=loaded.other_pk
    )
    assert uids(images, "SOPInstanceUID") == [uid("S1-MR/1"), uid("S1-MR/2")]
    admin_pk = loaded.platform.archive.target().project_pk
    admin = loaded.find(STUDY_ROOT, identifier("STUDY"), project_pk=admin_pk)
    assert uid("S6") not in uids(admin, "StudyInstanceUID")  # only "sees everything" sees it
    assert uid("S6") in uids(loaded.find(STUDY_ROOT, identifier("STUDY")), "StudyInstanceUID")
    both = ArchiveQuery(loaded.platform.engine).find(
        model=STUDY_ROOT,
        identifier=identifier("STUDY"),
        projects=frozenset({admin_pk, loaded.other_pk}),
    )
    assert uid("S6") in uids(list(both), "StudyInstanceUID")
    nothing = ArchiveQuery(loaded.platform.engine).find(
        model=STUDY_ROOT, identifier=identifier("STUDY"), projects=frozenset()
    )
    assert list(nothing) == []


def test_keys_outside_the_index_are_answered_from_json(loaded: Loaded) -> None:
    results = loaded.find(
        STUDY_ROOT,
        identifier("STUDY", Manufacturer="ACME*", PatientBirthDate=None, InstitutionName=None),
    )
    assert uids(results, "StudyInstanceUID") == [uid("S1"), uid("S3")]
    assert results[0].Manufacturer == "ACME Medical"
    assert results[0].PatientBirthDate == "19700101"
    assert "InstitutionName" in results[0]  # requested, absent in the data: returned empty
    assert results[0].InstitutionName in ("", None)
    series = loaded.find(
        STUDY_ROOT, identifier("SERIES", Manufacturer="acme*", StudyInstanceUID=uid("S1"))
    )
    assert series == []  # case-sensitive in Python as in SQL


def test_json_matching_and_limits_page_after_filtering(loaded: Loaded) -> None:
    keys = identifier("STUDY", Manufacturer="ACME Medical")
    assert uids(loaded.find(STUDY_ROOT, keys, limit=1, offset=1), "StudyInstanceUID") == [uid("S3")]


def test_limit_and_offset(loaded: Loaded) -> None:
    every = uids(loaded.find(STUDY_ROOT, identifier("STUDY")), "StudyInstanceUID")
    page = loaded.find(STUDY_ROOT, identifier("STUDY"), limit=2, offset=1)
    assert uids(page, "StudyInstanceUID") == every[1:3]


def _sequence(*items: Dataset) -> DataElement:
    return _element("ProcedureCodeSequence", list(items))


def test_sequence_keys(loaded: Loaded) -> None:
    def find(sequence: DataElement) -> list[Dataset]:
        ident = identifier("STUDY", PatientID="P1")
        ident.add(sequence)
        return loaded.find(STUDY_ROOT, ident)

    universal = find(_sequence())
    assert [len(result.ProcedureCodeSequence) for result in universal] == [1, 1]
    assert universal[0].ProcedureCodeSequence[0].CodeMeaning == "procedure X-S1"

    empty_item = Dataset()
    empty_item.CodeValue = None
    returned = find(_sequence(empty_item))
    assert len(returned) == 2
    item = returned[0].ProcedureCodeSequence[0]
    assert item.CodeValue == "X-S1"
    assert "CodeMeaning" not in item  # only the item's requested keys

    matching = Dataset()
    matching.CodeValue = "X-S2"
    assert uids(find(_sequence(matching)), "StudyInstanceUID") == [uid("S2")]
    matching.CodeValue = "nothing"
    assert find(_sequence(matching)) == []


def test_bulk_data_and_lower_level_keys_are_returned_empty(loaded: Loaded) -> None:
    ident = identifier("IMAGE", SOPInstanceUID=uid("S3-CT/1"), Rows=None, NumberOfFrames=None)
    ident.add(DataElement(0x7FE00010, "OW", None))
    (image,) = loaded.find(STUDY_ROOT, ident)
    assert image.Rows == 32
    assert int(image.NumberOfFrames) == 1
    assert image["PixelData"].value in (None, b"")
    (study,) = loaded.find(
        STUDY_ROOT, identifier("STUDY", StudyInstanceUID=uid("S3"), Modality="MR")
    )  # a SERIES key does not constrain a STUDY query
    assert study["Modality"].value in ("", None)


def test_non_ascii_values_declare_utf8(loaded: Loaded) -> None:
    (result,) = loaded.find(PATIENT_ROOT, identifier("PATIENT", PatientID="P2", PatientName=None))
    assert result.PatientName == "Müller^Anna"
    assert result.SpecificCharacterSet == "ISO_IR 192"
    ident = identifier("PATIENT", PatientID="P1", PatientName=None)
    ident.SpecificCharacterSet = "ISO_IR 100"
    (ascii_only,) = loaded.find(PATIENT_ROOT, ident)
    assert ascii_only.SpecificCharacterSet == "ISO_IR 100"


def test_instance_availability_and_retrieve_ae_title(loaded: Loaded) -> None:
    ident = identifier("STUDY", StudyInstanceUID=uid("S1"), InstanceAvailability=None)
    ident.RetrieveAETitle = None
    (result,) = loaded.find(STUDY_ROOT, ident, retrieve_ae_title="KAAPANA")
    assert result.InstanceAvailability == "ONLINE"
    assert result.RetrieveAETitle == "KAAPANA"


@pytest.mark.parametrize(
    ("model", "level", "message"),
    [
        (PATIENT_ROOT, None, "missing"),
        (PATIENT_ROOT, "", "missing"),
        (PATIENT_ROOT, "FRAME", "got 'FRAME'"),
        (STUDY_ROOT, "PATIENT", "must be STUDY/SERIES/IMAGE, got 'PATIENT'"),
    ],
)
def test_invalid_levels(
    loaded: Loaded, model: InformationModelValues, level: str | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        loaded.find(model, identifier(level))
    with pytest.raises(InvalidInput, match=message):
        query_level(identifier(level), model)


def retrieve(loaded: Loaded, model: InformationModelValues, ident: Dataset, **kw: Any) -> list[str]:
    items = ArchiveQuery(loaded.platform.engine).instances_to_retrieve(
        model=model, identifier=ident, projects=scope(kw.get("project_pk"))
    )
    return [item.sop_instance_uid for item in items]


def test_instances_to_retrieve(loaded: Loaded) -> None:
    s1 = retrieve(loaded, STUDY_ROOT, identifier("STUDY", StudyInstanceUID=uid("S1")))
    assert s1 == [uid(f"S1-CT/{n}") for n in (1, 2, 3)] + [uid("S1-MR/1"), uid("S1-MR/2")]
    listed = retrieve(
        loaded, STUDY_ROOT, identifier("SERIES", SeriesInstanceUID=[uid("S2-MR"), uid("S3-CT")])
    )
    assert listed == [uid("S2-MR/1"), uid("S3-CT/1")]
    patient = retrieve(loaded, PATIENT_ROOT, identifier("PATIENT", PatientID="P1"))
    assert len(patient) == 6
    narrowed = retrieve(
        loaded,
        PATIENT_ROOT,
        identifier("STUDY", PatientID="P2", StudyInstanceUID=[uid("S1"), uid("S3")]),
    )
    assert narrowed == [uid("S3-CT/1")]
    image = retrieve(loaded, STUDY_ROOT, identifier("IMAGE", SOPInstanceUID=uid("S1-CT/2")))
    assert image == [uid("S1-CT/2")]
    wildcard = retrieve(loaded, STUDY_ROOT, identifier("STUDY", StudyInstanceUID="*"))
    assert wildcard == []
    items = ArchiveQuery(loaded.platform.engine).instances_to_retrieve(
        model=STUDY_ROOT,
        identifier=identifier("IMAGE", SOPInstanceUID=uid("S1-CT/2")),
        projects=None,
    )
    assert items[0].sop_class_uid == CTImageStorage
    assert items[0].transfer_syntax_uid == ExplicitVRLittleEndian
    assert loaded.platform.store.exists(items[0].storage_key)


def test_instances_to_retrieve_respects_projects(loaded: Loaded) -> None:
    ident = identifier("STUDY", StudyInstanceUID=uid("S1"))
    assert retrieve(loaded, STUDY_ROOT, ident, project_pk=loaded.other_pk) == [
        uid("S1-MR/1"),
        uid("S1-MR/2"),
    ]


@pytest.mark.parametrize(
    ("model", "ident", "message"),
    [
        (STUDY_ROOT, identifier("STUDY"), "needs 'StudyInstanceUID'"),
        (STUDY_ROOT, identifier("SERIES", StudyInstanceUID="1.2"), "needs 'SeriesInstanceUID'"),
        (PATIENT_ROOT, identifier("PATIENT", PatientID=""), "needs 'PatientID'"),
        (STUDY_ROOT, identifier("PATIENT", PatientID="P1"), "must be STUDY/SERIES/IMAGE"),
    ],
)
def test_retrieve_needs_the_unique_key_of_its_level(
    loaded: Loaded, model: InformationModelValues, ident: Dataset, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        retrieve(loaded, model, ident)


@pytest.mark.parametrize(
    ("vr", "value", "expected"),
    [
        ("LO", "", None),
        ("LO", "*", None),
        ("LO", ["A", "*"], None),
        ("LO", "A?C", (Wildcard("A?C"),)),
        ("UI", "1.2*", (Equal("1.2*"),)),  # no wildcards in UIDs
        ("DA", "20200101-", (Range("20200101", ""),)),
        ("DA", "-20200101", (Range("", "20200101"),)),
        ("TM", "0800-1000", (Range("0800", "1000"),)),
        ("DT", "20200101-20210101", (Range("20200101", "20210101"),)),
        ("DT", "20200101120000-0500", (Equal("20200101120000-0500"),)),  # a UTC offset
        ("PN", "Doe^John^^", (Equal("Doe^John"),)),
        ("OB", b"\x01", None),
    ],
)
def test_parse_condition(vr: str, value: Any, expected: tuple[Any, ...] | None) -> None:
    condition = parse_condition(DataElement(0x00091001, vr, value, validation_mode=config.IGNORE))
    assert (condition.alternatives if condition else None) == expected


def test_index_columns_are_keyed_by_dicom_keywords() -> None:
    for keyword in (*INDEX_COLUMNS, *COMPUTED_ATTRIBUTES):
        assert tag_for_keyword(keyword) is not None, keyword
