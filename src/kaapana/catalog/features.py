"""Numbers workflows computed for a series (radiomics of a SEG's segments), kept in
``series_features`` and indexed as catalog fields ``<source>.<name>``.

Workers never open the database, so a task hands its features to the platform action
``set-series-features``; its handler stores them here. A source's features of a series are
replaced as a whole, so a rerun with other settings leaves no stale field behind.
"""

import math
import re
from collections.abc import Mapping
from typing import Final

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from kaapana.archive.visibility import ProjectScope
from kaapana.catalog.derived import FEATURE_FAMILIES
from kaapana.catalog.lookup import visible_series_row
from kaapana.db.models import SeriesFeature
from kaapana.errors import InvalidInput

FEATURE_NAME: Final = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
MAX_NAME: Final = 191
MAX_FEATURES: Final = 2000


def checked_features(source: object, features: object) -> dict[str, float]:
    """The features as names and finite numbers of a known source; ``InvalidInput`` names the
    first wrong one."""
    if source not in FEATURE_FAMILIES:
        raise InvalidInput(
            f"feature source {source!r} is unknown; known: {sorted(FEATURE_FAMILIES)}"
        )
    if not isinstance(features, Mapping):
        raise InvalidInput("'features' must be an object of feature names and numbers")
    if len(features) > MAX_FEATURES:
        raise InvalidInput(f"at most {MAX_FEATURES} features per series, got {len(features)}")
    checked: dict[str, float] = {}
    for name, value in features.items():
        if not isinstance(name, str) or len(name) > MAX_NAME or not FEATURE_NAME.match(name):
            raise InvalidInput(
                f"feature name {name!r} must be dotted words of letters, digits, '_' and '-' "
                f"(at most {MAX_NAME} characters)"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInput(f"feature {name!r} must be a finite number, got {value!r}")
        checked[name] = float(value)
    return checked


def replace_features(
    session: Session,
    *,
    series_instance_uid: str,
    projects: ProjectScope,
    source: str,
    features: Mapping[str, float],
) -> int:
    """Replace the series' features of ``source``; returns the series' pk."""
    series = visible_series_row(session, series_instance_uid, projects)
    session.execute(
        delete(SeriesFeature).where(
            SeriesFeature.series_pk == series.id, SeriesFeature.source == source
        )
    )
    rows = [
        {"series_pk": series.id, "source": source, "name": name, "value": value}
        for name, value in sorted(features.items())
    ]
    if rows:
        session.execute(insert(SeriesFeature), rows)
    return series.id


__all__ = ["FEATURE_NAME", "checked_features", "replace_features"]
