"""The catalog's platform actions for workflows: what a task may ask of the catalog."""

from collections.abc import Sequence

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kaapana.archive.visibility import visible_series
from kaapana.auth.projects import Projects
from kaapana.auth.roles import ROLE_PERMISSIONS, PermissionValues
from kaapana.auth.users import Users
from kaapana.catalog.catalog import Catalog
from kaapana.catalog.datasets import Datasets
from kaapana.catalog.series_deletion import SeriesDeletion
from kaapana.db.models import Run, Series
from kaapana.errors import Conflict, Forbidden, InvalidInput
from kaapana.workflows.actions import ActionHandler, ActionRequest
from kaapana.workflows.runs import CONSOLE_CREATOR

TAG_SERIES = "tag-series"
ADD_TO_DATASET = "add-to-dataset"
DELETE_SERIES = "delete-series"
_CHUNK = 500
SET_SERIES_FEATURES = "set-series-features"


def _strings(request: ActionRequest, key: str) -> list[str]:
    value = request.payload.get(key, [])
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidInput(f"{request.action}: {key!r} must be a list of strings")
    return [str(item) for item in value]


def _input_series(request: ActionRequest, verb: str) -> list[str]:
    """``series`` of the payload (default: the task's series), which must be input series."""
    series = _strings(request, "series") or list(request.input_series)
    outside = sorted(set(series) - set(request.input_series))
    if outside:
        raise InvalidInput(
            f"{request.action}: the task may {verb} its input series only, not {outside[:3]}"
        )
    return series


def tag_series_handler(catalog: Catalog) -> ActionHandler:
    """``tag-series`` with ``series`` (UIDs, default: the task's series), ``add`` and ``remove``:
    tags only series the task was given, all or nothing."""

    def handle(request: ActionRequest) -> str:
        series = _input_series(request, "tag")
        change = catalog.tag(
            project_pk=request.project_pk,
            series_instance_uids=series,
            add=_strings(request, "add"),
            remove=_strings(request, "remove"),
        )
        return f"{TAG_SERIES}: {change.changed} of {change.series} series changed ({change.tags})"

    return handle


def _creator(engine: Engine, run_id: int) -> str:
    with Session(engine) as session:
        run = session.get(Run, run_id)
        return run.created_by if run is not None else ""


def add_to_dataset_handler(engine: Engine, datasets: Datasets, projects: Projects) -> ActionHandler:
    """``add-to-dataset`` with ``dataset`` (a name) and ``series`` (UIDs the project holds, e.g.
    what the task stored): a selection dataset, created when missing."""

    def handle(request: ActionRequest) -> str:
        name = request.payload.get("dataset")
        if not isinstance(name, str):
            raise InvalidInput(f"{ADD_TO_DATASET}: 'dataset' must be a dataset name")
        series = _strings(request, "series")
        project = projects.get(request.project)
        actor = _creator(engine, request.run_id) or f"run:{request.run_id}"
        if name not in datasets.names(project):
            try:
                datasets.create(project, name, series_instance_uids=series, actor=actor)
                return f"{ADD_TO_DATASET}: created dataset {name!r} with {len(series)} series"
            except Conflict:
                pass  # created meanwhile by another task: add to it
        added = datasets.add(project, name, series, actor=actor)
        return f"{ADD_TO_DATASET}: {added} of {len(series)} series added to dataset {name!r}"

    return handle


def _held(engine: Engine, project_pk: int, uids: Sequence[str]) -> list[str]:
    """The UIDs the project still holds (a retried deletion finds some gone already)."""
    held: set[str] = set()
    with Session(engine) as session:
        for start in range(0, len(uids), _CHUNK):
            held.update(
                session.scalars(
                    select(Series.series_instance_uid).where(
                        Series.series_instance_uid.in_(uids[start : start + _CHUNK]),
                        visible_series(Series, frozenset({project_pk})),
                    )
                )
            )
    return [uid for uid in uids if uid in held]


def _may_manage(users: Users, creator: str, project_pk: int) -> bool:
    """The run's creator is a principal investigator of the project or an administrator (or
    the console, whose operator has the database at hand: ``kaapana run``)."""
    if creator == CONSOLE_CREATOR:
        return True
    user = users.find(creator) if creator else None
    if user is None:
        return False
    role = users.roles_of(user.id).get(project_pk)
    return user.is_admin or (role is not None and PermissionValues.manage in ROLE_PERMISSIONS[role])


def delete_series_handler(
    engine: Engine, deletion: SeriesDeletion, users: Users, projects: Projects
) -> ActionHandler:
    """``delete-series`` with ``series`` (default: the task's series, which it must be):
    deletes them from the project, all or nothing, audited; only for runs created by a
    principal investigator of the project or an administrator."""

    def handle(request: ActionRequest) -> str:
        series = _input_series(request, "delete")
        creator = _creator(engine, request.run_id)
        if not _may_manage(users, creator, request.project_pk):
            raise Forbidden(
                f"{DELETE_SERIES}: run {request.run_id} was created by {creator or 'nobody'!r}, "
                f"who is neither a principal investigator of project {request.project!r} nor an "
                "administrator"
            )
        remaining = _held(engine, request.project_pk, series)
        if not remaining:
            return f"{DELETE_SERIES}: the {len(series)} series are gone from the project already"
        removal = deletion.delete(
            projects.get(request.project),
            remaining,
            actor=creator,
            detail={"run": request.run_id},
        )
        return (
            f"{DELETE_SERIES}: {removal.series_unlinked} series taken out of "
            f"{request.project!r}, {removal.series_deleted} deleted from the archive "
            f"({removal.instances_deleted} instances)"
        )

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
    "ADD_TO_DATASET",
    "DELETE_SERIES",
    "SET_SERIES_FEATURES",
    "TAG_SERIES",
    "add_to_dataset_handler",
    "delete_series_handler",
    "set_series_features_handler",
    "tag_series_handler",
]
