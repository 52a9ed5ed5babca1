"""Tags: a project's own labels on series (``excluded``, ``reviewed``, ``train``, ...).

Tags belong to the project, not to the series: the same series can be ``excluded`` in one
project and not in another. Series are named by SeriesInstanceUID; one that the project does not
see is reported as not found, exactly like one that does not exist.
"""

import re
from collections.abc import Sequence
from typing import Final

from pydantic import BaseModel
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from kaapana.db.models import Series, SeriesProject, SeriesTag
from kaapana.errors import InvalidInput, NotFound

MAX_TAG_LENGTH: Final = 64
MAX_SERIES_PER_CALL: Final = 10_000
_TAG = re.compile(r"[\w][\w .:/+-]*")


class TagCount(BaseModel):
    tag: str
    series: int


class TagChange(BaseModel):
    """What a tag call changed: series that gained (or lost) the tags, per tag."""

    tags: list[str]
    series: int
    changed: int


def check_tag(tag: object) -> str:
    if not isinstance(tag, str) or not tag.strip():
        raise InvalidInput(f"tag: expected a non-empty string, got {tag!r:.80}")
    value = tag.strip()
    if len(value) > MAX_TAG_LENGTH or not _TAG.fullmatch(value):
        raise InvalidInput(
            f"tag {value[:80]!r}: at most {MAX_TAG_LENGTH} letters, digits, spaces and"
            " . : / + - _, starting with a letter or digit"
        )
    return value


def _series_pks(session: Session, project_pk: int, uids: Sequence[str]) -> list[int]:
    if not uids:
        raise InvalidInput("series_instance_uids: name at least one series")
    if len(uids) > MAX_SERIES_PER_CALL:
        raise InvalidInput(
            f"series_instance_uids: at most {MAX_SERIES_PER_CALL} per call, got {len(uids)}"
        )
    wanted = list(dict.fromkeys(uid.replace("\x00", "") for uid in uids))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            (uid, pk)
            for uid, pk in session.execute(
                select(Series.series_instance_uid, Series.id)
                .join(SeriesProject, SeriesProject.series_pk == Series.id)
                .where(
                    SeriesProject.project_pk == project_pk, Series.series_instance_uid.in_(chunk)
                )
            ).all()
        )
    missing = [uid for uid in wanted if uid not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise NotFound(f"series {missing[0][:64]!r}{more} not found in this project")
    return [found[uid] for uid in wanted]


def change_tags(
    session: Session,
    *,
    project_pk: int,
    series_instance_uids: Sequence[str],
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
) -> TagChange:
    """Add and remove tags on many series at once; all or nothing."""
    added = [check_tag(tag) for tag in add]
    removed = [check_tag(tag) for tag in remove]
    if not added and not removed:
        raise InvalidInput("tags: name at least one tag to add or remove")
    pks = _series_pks(session, project_pk, series_instance_uids)
    changed = 0
    for start in range(0, len(pks), 500):
        chunk = pks[start : start + 500]
        if removed:
            result = session.execute(
                delete(SeriesTag).where(
                    SeriesTag.project_pk == project_pk,
                    SeriesTag.series_pk.in_(chunk),
                    SeriesTag.tag.in_(removed),
                )
            )
            changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        for tag in dict.fromkeys(added):
            present = set(
                session.scalars(
                    select(SeriesTag.series_pk).where(
                        SeriesTag.project_pk == project_pk,
                        SeriesTag.tag == tag,
                        SeriesTag.series_pk.in_(chunk),
                    )
                )
            )
            rows = [
                {"project_pk": project_pk, "series_pk": pk, "tag": tag}
                for pk in chunk
                if pk not in present
            ]
            if rows:
                session.execute(insert(SeriesTag), rows)
                changed += len(rows)
    return TagChange(tags=sorted({*added, *removed}), series=len(pks), changed=changed)


def tag_counts(session: Session, *, project_pk: int) -> list[TagCount]:
    counted = func.count().label("n")
    rows = session.execute(
        select(SeriesTag.tag, counted)
        .where(SeriesTag.project_pk == project_pk)
        .group_by(SeriesTag.tag)
        .order_by(counted.desc(), SeriesTag.tag)
    )
    return [TagCount(tag=tag, series=count) for tag, count in rows]


__all__ = ["TagChange", "TagCount", "change_tags", "check_tag", "tag_counts"]
