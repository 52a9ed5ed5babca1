"""The model registry: trained models by project, name and version, with their training run,
labels, input modality, metrics and the file in result storage.

Models are registered by the scheduler side when a training task asks for it (platform action
``register-model``) and looked up when a run that applies one is created (resolver ``model``):
workers never open the database, so a run carries the resolved file path in its parameters.
"""

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from kaapana.archive.visibility import ProjectScope
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import Model, Project
from kaapana.errors import InvalidInput, NotFound
from kaapana.models.names import MODEL_NAME
from kaapana.storage import ObjectStore


class ModelView(BaseModel):
    name: str
    version: int
    project: str
    labels: list[dict[str, Any]]
    """One entry per output channel: ``label`` and its coded ``category`` and ``type``."""
    modality: str
    run_id: int | None
    metrics: dict[str, Any]
    storage_key: str
    size: int
    sha256: str
    created_at: datetime


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not MODEL_NAME.match(name):
        raise InvalidInput(
            f"a model name must be 1-64 lower-case letters, digits, '.', '_' or '-', got {name!r}"
        )
    return name


def parse_model_reference(reference: str) -> tuple[str, int | None]:
    """``name`` (the latest version) or ``name/version``."""
    name, _, version = str(reference).partition("/")
    if version and not version.isdigit():
        raise InvalidInput(f"a model is 'name' or 'name/version', got {reference!r}")
    return check_model_name(name), int(version) if version else None


class ModelRegistry:
    def __init__(self, *, engine: Engine, results: ObjectStore) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._results = results

    def register(
        self,
        *,
        project_pk: int,
        run_id: int | None,
        name: str,
        storage_key: str,
        labels: list[dict[str, Any]],
        modality: str,
        metrics: dict[str, Any],
    ) -> ModelView:
        """The next version of ``name`` in the project; the same run registering the same name
        again (a retried task) gets its earlier version back. ``run_id`` None: a model not
        trained by a local run (a federated one), always a new version."""
        check_model_name(name)
        if not labels or not all(isinstance(item, dict) and item.get("label") for item in labels):
            raise InvalidInput(f"model {name!r} needs labels, each with a 'label', got {labels!r}")
        if not modality or len(modality) > 16:
            raise InvalidInput(f"'modality' must be 1-16 characters, got {modality!r}")
        if not self._results.exists(storage_key):
            raise InvalidInput(f"model {name!r}: no file {storage_key!r} in result storage")
        data = self._results.get(storage_key)
        with write_transaction(self._engine) as session:
            row = (
                None
                if run_id is None
                else session.scalar(select(Model).where(Model.run_pk == run_id, Model.name == name))
            )
            if row is None:
                latest = session.scalar(
                    select(func.max(Model.version)).where(
                        Model.project_pk == project_pk, Model.name == name
                    )
                )
                row = Model(project_pk=project_pk, name=name, version=(latest or 0) + 1)
                session.add(row)
            row.run_pk = run_id
            row.labels = labels
            row.modality = modality
            row.metrics = metrics
            row.storage_key = storage_key
            row.size = len(data)
            row.sha256 = hashlib.sha256(data).hexdigest()
            session.flush()
            return _view(session, row)

    def list_models(
        self, *, scope: ProjectScope = None, project_pk: int | None = None
    ) -> list[ModelView]:
        """Every version of every model the scope sees, by name, newest version first."""
        with self._sessions() as session:
            rows = session.scalars(
                _visible(scope, project_pk).order_by(Model.name, Model.version.desc())
            )
            return [_view(session, row) for row in rows]

    def versions(
        self, name: str, *, scope: ProjectScope = None, project_pk: int | None = None
    ) -> list[ModelView]:
        found = [m for m in self.list_models(scope=scope, project_pk=project_pk) if m.name == name]
        if not found:
            raise NotFound(f"model {name!r} not found")
        return found

    def get(
        self,
        name: str,
        version: int | None = None,
        *,
        scope: ProjectScope = None,
        project_pk: int | None = None,
    ) -> ModelView:
        """One version (default: the latest); a name in several visible projects needs one."""
        versions = self.versions(name, scope=scope, project_pk=project_pk)
        projects = sorted({m.project for m in versions})
        if len(projects) > 1:
            raise InvalidInput(f"model {name!r} exists in projects {projects}: name the project")
        if version is None:
            return versions[0]
        for model in versions:
            if model.version == version:
                return model
        raise NotFound(f"model {name!r} has no version {version}")

    def resolve(self, project_pk: int, reference: Any) -> dict[str, Any]:
        """What a run applying model ``name[/version]`` of its project needs on the workers:
        the exact version, its labels and modality, and the file's path and sha256."""
        name, version = parse_model_reference(reference)
        try:
            model = self.get(name, version, project_pk=project_pk)
        except NotFound as exc:
            raise NotFound(f"{exc.detail} in this project") from exc
        path = self._results.local_path(model.storage_key)
        if path is None:
            raise InvalidInput("applying a model needs result storage with local files")
        return {
            "name": model.name,
            "version": model.version,
            "labels": model.labels,
            "modality": model.modality,
            "path": path,
            "sha256": model.sha256,
        }


def _visible(scope: ProjectScope, project_pk: int | None) -> Any:
    statement = select(Model)
    if scope is not None:
        statement = statement.where(Model.project_pk.in_(scope))
    if project_pk is not None:
        statement = statement.where(Model.project_pk == project_pk)
    return statement


def _view(session: Session, row: Model) -> ModelView:
    project = session.get(Project, row.project_pk)
    return ModelView(
        name=row.name,
        version=row.version,
        project=project.name if project else "",
        labels=row.labels,
        modality=row.modality,
        run_id=row.run_pk,
        metrics=row.metrics,
        storage_key=row.storage_key,
        size=row.size,
        sha256=row.sha256,
        created_at=row.created_at,
    )


__all__ = [
    "ModelRegistry",
    "ModelView",
    "check_model_name",
    "parse_model_reference",
]
