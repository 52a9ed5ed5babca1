"""The catalog's platform actions for workflows: what a task may ask of the catalog."""

from collections.abc import Sequence

from kaapana.catalog.catalog import Catalog
from kaapana.errors import InvalidInput
from kaapana.workflows.actions import ActionHandler, ActionRequest

TAG_SERIES = "tag-series"
SET_SERIES_FEATURES = "set-series-features"


def _strings(request: ActionRequest, key: str) -> list[str]:
    value = request.payload.get(key, [])
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidInput(f"{request.action}: {key!r} must be a list of strings")
    return [str(item) for item in value]


def tag_series_handler(catalog: Catalog) -> ActionHandler:
    """``tag-series`` with ``series`` (UIDs, default: the task's series), ``add`` and ``remove``:
    tags only series the task was given, all or nothing."""

    def handle(request: ActionRequest) -> str:
        series = _strings(request, "series") or list(request.input_series)
        outside = sorted(set(series) - set(request.input_series))
        if outside:
            raise InvalidInput(
                f"{TAG_SERIES}: the task may tag its input series only, not {outside[:3]}"
            )
        change = catalog.tag(
            project_pk=request.project_pk,
            series_instance_uids=series,
            add=_strings(request, "add"),
            remove=_strings(request, "remove"),
        )
        return f"{TAG_SERIES}: {change.changed} of {change.series} series changed ({change.tags})"

    return handle


def set_series_features_handler(catalog: Catalog) -> ActionHandler:
    """``set-series-features`` with ``source`` (a feature family, e.g. ``radiomics``),
    ``features`` (names to numbers) and ``series`` (one UID, default: the task's series):
    replaces that source's features of one of the task's input series and indexes them."""

    def handle(request: ActionRequest) -> str:
        series = str(request.payload.get("series") or request.series_instance_uid or "")
        if series not in request.input_series:
            raise InvalidInput(
                f"{SET_SERIES_FEATURES}: the task may set features of its input series only, "
                f"not {series[:64]!r}"
            )
        source = request.payload.get("source")
        stored = catalog.set_features(
            project_pk=request.project_pk,
            series_instance_uid=series,
            source=str(source),
            features=request.payload.get("features") or {},
        )
        return f"{SET_SERIES_FEATURES}: {stored} {source} features on series {series}"

    return handle


__all__ = [
    "SET_SERIES_FEATURES",
    "TAG_SERIES",
    "set_series_features_handler",
    "tag_series_handler",
]
