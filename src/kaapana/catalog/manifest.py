"""Manifests: the member list of a set of series, as CSV or JSON, streamed page by page.

A manifest says exactly which data a cohort is (patient, study, series, and in the JSON form
every SOP Instance UID with the sha256 of its stored bytes), so an analysis can be traced back
and its input verified. It names patients, so it is for readers of the project only. The series
are read in pages, so a 50,000-series dataset streams in constant memory and the first bytes
leave before the last page is read.
"""

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, Row, Select, select

from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Patient, Series, Study

PAGE_SIZE = 500
COLUMNS = (
    "PatientID",
    "StudyInstanceUID",
    "StudyDate",
    "SeriesInstanceUID",
    "Modality",
    "SeriesDescription",
    "BodyPartExamined",
    "NumberOfInstances",
)


class ManifestFormatValues(StrEnum):
    csv = "csv"
    json = "json"


def _pages(
    engine: Engine, series_ids: Select[tuple[int]], *, instances: bool, page_size: int
) -> Iterator[tuple[Sequence[Row[Any]], dict[int, list[dict[str, str]]]]]:
    """Pages of series rows in pk order, each with its instances when asked for.

    The member pks are read once, streamed from a server-side cursor (``yield_per``); each
    page's details are then looked up by primary key. One pass over the members whatever the
    planner's statistics say, one read transaction (a consistent manifest), constant memory.
    """
    members = series_ids.subquery()
    member_pk = members.c[0]
    with session_factory(engine)() as session:
        pks = session.scalars(
            select(member_pk).distinct().order_by(member_pk).execution_options(yield_per=page_size)
        )
        for page in pks.partitions():
            rows = session.execute(
                select(
                    Series.id,
                    Patient.patient_id,
                    Study.study_instance_uid,
                    Study.study_date,
                    Series.series_instance_uid,
                    Series.modality,
                    Series.series_description,
                    Series.body_part_examined,
                    Series.number_of_instances,
                )
                .join(Study, Series.study_pk == Study.id)
                .join(Patient, Study.patient_pk == Patient.id)
                .where(Series.id.in_(page))
                .order_by(Series.id)
            ).all()
            listed: dict[int, list[dict[str, str]]] = {row.id: [] for row in rows}
            if instances and rows:
                for series_pk, sop_instance_uid, sha256 in session.execute(
                    select(Instance.series_pk, Instance.sop_instance_uid, Instance.sha256)
                    .where(Instance.series_pk.in_(listed))
                    .order_by(
                        Instance.series_pk,
                        Instance.instance_number.nulls_last(),
                        Instance.sop_instance_uid,
                    )
                ):
                    listed[series_pk].append({"SOPInstanceUID": sop_instance_uid, "sha256": sha256})
            yield rows, listed


def _values(row: Row[Any]) -> tuple[Any, ...]:
    return (
        row.patient_id,
        row.study_instance_uid,
        row.study_date,
        row.series_instance_uid,
        row.modality,
        row.series_description,
        row.body_part_examined,
        row.number_of_instances,
    )


def manifest_csv(
    engine: Engine, series_ids: Select[tuple[int]], *, page_size: int = PAGE_SIZE
) -> Iterator[str]:
    """A header line, then one line per series; one text chunk per page."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    for rows, _ in _pages(engine, series_ids, instances=False, page_size=page_size):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(_values(row) for row in rows)
        yield buffer.getvalue()


def manifest_json(
    engine: Engine,
    series_ids: Select[tuple[int]],
    *,
    header: Mapping[str, Any],
    page_size: int = PAGE_SIZE,
) -> Iterator[str]:
    """``{**header, "series": [{COLUMNS..., "Instances": [{SOPInstanceUID, sha256}]}]}``."""
    opening = json.dumps({**header, "series": []})
    yield opening[: opening.rindex("[") + 1]
    separator = ""
    for rows, instances in _pages(engine, series_ids, instances=True, page_size=page_size):
        chunk = [
            json.dumps(
                {**dict(zip(COLUMNS, _values(row), strict=True)), "Instances": instances[row.id]}
            )
            for row in rows
        ]
        yield separator + ",".join(chunk)
        separator = ","
    yield "]}"


__all__ = ["COLUMNS", "PAGE_SIZE", "ManifestFormatValues", "manifest_csv", "manifest_json"]
