"""Building a series' catalog rows: flattened attributes, derived fields and its text document.

Run when a series becomes stable (``SeriesArrived``) and by ``reindex``, never on ingest's hot
path. A series' rows are replaced as a whole in one transaction, so a search sees the old rows
or the new ones, never a mixture.
"""

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Final

from sqlalchemy import Engine, delete, exists, insert, select, update
from sqlalchemy.orm import Session, aliased

from kaapana.catalog.derived import (
    ANNOTATION_MODALITIES,
    DERIVED_FIELDS,
    SeriesFacts,
    feature_values,
)
from kaapana.catalog.flatten import Document, FieldValue, distinct_values, flatten, typed_value
from kaapana.db.engine import write_transaction
from kaapana.db.models import (
    CatalogGeneration,
    Instance,
    Patient,
    Series,
    SeriesAttribute,
    SeriesFeature,
    SeriesProject,
    SeriesReference,
    SeriesText,
    SeriesValidation,
    Study,
)

BATCH: Final = 200
# The attributes whose words free-text search finds (with annotation labels and project tags).
TEXT_FIELDS: Final = (
    "SeriesDescription",
    "StudyDescription",
    "PatientName",
    "BodyPartExamined",
    "ProtocolName",
    "annotation_labels",
)


def series_values(facts: SeriesFacts) -> list[FieldValue]:
    """Every catalog value of one series: its DICOM JSON flattened, then the derived fields."""
    values = flatten(facts.document)
    for entry in DERIVED_FIELDS.values():
        for raw in entry.compute(facts):
            typed = typed_value(entry.name, entry.kind, raw)
            if typed is not None:
                values.append(typed)
    for name, kind, raw in feature_values(facts):
        typed = typed_value(name, kind, raw)
        if typed is not None:
            values.append(typed)
    return distinct_values(values)


def text_document(values: Sequence[FieldValue]) -> str:
    """The words of the text fields, person-name carets as spaces."""
    words = [v.text_value.replace("^", " ") for v in values if v.field in TEXT_FIELDS]
    return " ".join(words)


def _references(session: Session, series_pks: Sequence[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for series_pk, uid in session.execute(
        select(SeriesReference.series_pk, SeriesReference.referenced_series_uid)
        .where(SeriesReference.series_pk.in_(series_pks))
        .order_by(SeriesReference.series_pk, SeriesReference.referenced_series_uid)
    ):
        found[series_pk].append(uid)
    return found


def _referenced_by(session: Session, series_pks: Sequence[int]) -> dict[int, list[str]]:
    """The series referencing each one, if they share a project: the field's values are seen
    by the project's members, and a series of a project they do not see is none of theirs."""
    referencing = aliased(Series)
    own, theirs = aliased(SeriesProject), aliased(SeriesProject)
    shared = (
        exists()
        .where(own.series_pk == Series.id, theirs.series_pk == referencing.id)
        .where(own.project_pk == theirs.project_pk)
    )
    found: dict[int, list[str]] = defaultdict(list)
    for series_pk, uid in session.execute(
        select(Series.id, referencing.series_instance_uid)
        .join(SeriesReference, SeriesReference.referenced_series_uid == Series.series_instance_uid)
        .join(referencing, referencing.id == SeriesReference.series_pk)
        .where(Series.id.in_(series_pks), shared)
        .order_by(Series.id, referencing.series_instance_uid)
    ):
        found[series_pk].append(uid)
    return found


def _facts(session: Session, series_pks: Sequence[int]) -> Iterator[SeriesFacts]:
    rows = session.execute(
        select(Series, Study, Patient)
        .join(Study, Series.study_pk == Study.id)
        .join(Patient, Study.patient_pk == Patient.id)
        .where(Series.id.in_(series_pks))
    ).all()
    annotated = [row[0].id for row in rows if row[0].modality in ANNOTATION_MODALITIES]
    instances: dict[int, list[Document]] = defaultdict(list)
    if annotated:
        for series_pk, document in session.execute(
            select(Instance.series_pk, Instance.metadata_json).where(
                Instance.series_pk.in_(annotated)
            )
        ):
            instances[series_pk].append(document)
    references = _references(session, series_pks)
    referenced_by = _referenced_by(session, series_pks)
    features: dict[int, list[tuple[str, str, float]]] = defaultdict(list)
    for series_pk, source, name, value in session.execute(
        select(
            SeriesFeature.series_pk, SeriesFeature.source, SeriesFeature.name, SeriesFeature.value
        )
        .where(SeriesFeature.series_pk.in_(series_pks))
        .order_by(SeriesFeature.series_pk, SeriesFeature.source, SeriesFeature.name)
    ):
        features[series_pk].append((source, name, value))
    validations = {
        row.series_pk: row
        for row in session.scalars(
            select(SeriesValidation).where(SeriesValidation.series_pk.in_(series_pks))
        )
    }
    for series, study, patient in rows:
        yield SeriesFacts(
            series,
            study,
            patient,
            series.metadata_json or {},
            tuple(instances[series.id]),
            references=tuple(references[series.id]),
            referenced_by=tuple(referenced_by[series.id]),
            validation=validations.get(series.id),
            features=tuple(features[series.id]),
        )


def index_series(engine: Engine, series_pks: Sequence[int]) -> int:
    """(Re)build the catalog rows of ``series_pks``; returns how many series were indexed."""
    indexed = 0
    for start in range(0, len(series_pks), BATCH):
        chunk = list(series_pks[start : start + BATCH])
        with write_transaction(engine) as session:
            attributes: list[dict[str, object]] = []
            documents: list[dict[str, object]] = []
            for facts in _facts(session, chunk):
                values = series_values(facts)
                attributes += [
                    {
                        "series_pk": facts.series.id,
                        "field": v.field,
                        "text_value": v.text_value,
                        "number_value": v.number_value,
                    }
                    for v in values
                ]
                documents.append({"series_pk": facts.series.id, "body": text_document(values)})
            session.execute(delete(SeriesAttribute).where(SeriesAttribute.series_pk.in_(chunk)))
            session.execute(delete(SeriesText).where(SeriesText.series_pk.in_(chunk)))
            if attributes:
                session.execute(insert(SeriesAttribute), attributes)
            if documents:
                session.execute(insert(SeriesText), documents)
            session.execute(update(CatalogGeneration).values(value=CatalogGeneration.value + 1))
            indexed += len(documents)
    return indexed


def all_series_pks(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return list(session.scalars(select(Series.id).order_by(Series.id)))


__all__ = ["TEXT_FIELDS", "all_series_pks", "index_series", "series_values", "text_document"]
