"""Finding a series by its UID within what the caller may see."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaapana.archive.visibility import ProjectScope, visible_series
from kaapana.db.models import Series
from kaapana.errors import NotFound


def visible_series_row(
    session: Session, series_instance_uid: str, projects: ProjectScope
) -> Series:
    """The series, or ``NotFound`` whether it does not exist or lies outside ``projects``."""
    statement = select(Series).where(Series.series_instance_uid == series_instance_uid)
    if projects is not None:
        statement = statement.where(visible_series(Series, projects))
    found = session.scalars(statement).first()
    if found is None:
        raise NotFound(f"series {series_instance_uid[:64]!r} not found")
    return found


__all__ = ["visible_series_row"]
