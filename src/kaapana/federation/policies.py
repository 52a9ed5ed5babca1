"""The data owner's rules at a participant: which workflows (pinned by definition hash) may
run, how jobs are approved, what may leave, and which datasets are offered under which name."""

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from kaapana.auth.projects import Projects
from kaapana.catalog import Datasets
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import FederationExposure, FederationPolicy, Project, utcnow
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.federation.states import ApprovalValues
from kaapana.workflows.definitions import check_name
from kaapana.workflows.registry import Registry


@dataclass(frozen=True, slots=True)
class PolicyView:
    workflow: str
    definition_hash: str
    approval: ApprovalValues
    max_output_bytes: int
    allow_pixel_data: bool
    share_logs: bool
    approved_by: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ExposureView:
    """What the orchestrator may see of an exposed dataset: its name and counts."""

    name: str
    project: str
    dataset: str
    patients: int
    studies: int
    series: int

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "patients": self.patients,
            "studies": self.studies,
            "series": self.series,
        }


def _policy_view(row: FederationPolicy) -> PolicyView:
    return PolicyView(
        workflow=row.workflow,
        definition_hash=row.definition_hash,
        approval=ApprovalValues(row.approval),
        max_output_bytes=row.max_output_bytes,
        allow_pixel_data=row.allow_pixel_data,
        share_logs=row.share_logs,
        approved_by=row.approved_by,
        updated_at=row.updated_at,
    )


class Policies:
    def __init__(
        self,
        *,
        engine: Engine,
        registry: Registry,
        projects: Projects,
        datasets: Datasets,
        default_max_output_bytes: int,
    ) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._registry = registry
        self._projects = projects
        self._datasets = datasets
        self._default_max = default_max_output_bytes

    # -- workflows ------------------------------------------------------------------------

    def allow(
        self,
        workflow: str,
        *,
        approval: ApprovalValues,
        actor: str,
        definition_hash: str | None = None,
        max_output_bytes: int | None = None,
        allow_pixel_data: bool = False,
        share_logs: bool = False,
    ) -> PolicyView:
        """Allow ``workflow`` pinned to ``definition_hash`` (default: the installed one)."""
        installed = self._registry.get(workflow)
        pinned = (definition_hash or installed.definition_hash).lower()
        if len(pinned) != 64 or any(c not in "0123456789abcdef" for c in pinned):
            raise InvalidInput(f"'definition_hash' must be 64 hex digits, got {pinned!r}")
        if max_output_bytes is not None and not 1 <= max_output_bytes <= 2**62:
            raise InvalidInput(f"'max_output_bytes' must be 1-2**62, got {max_output_bytes}")
        with write_transaction(self._engine) as session:
            row = session.scalar(
                select(FederationPolicy).where(FederationPolicy.workflow == workflow)
            )
            if row is None:
                row = FederationPolicy(workflow=workflow)
                session.add(row)
            row.definition_hash = pinned
            row.approval = ApprovalValues(approval)
            row.max_output_bytes = max_output_bytes or self._default_max
            row.allow_pixel_data = allow_pixel_data
            row.share_logs = share_logs
            row.approved_by = actor
            row.updated_at = utcnow()
            session.flush()
            return _policy_view(row)

    def revoke(self, workflow: str) -> None:
        with write_transaction(self._engine) as session:
            row = session.scalar(
                select(FederationPolicy).where(FederationPolicy.workflow == workflow)
            )
            if row is None:
                raise NotFound(f"workflow {workflow!r} is not allowed for federated jobs")
            session.delete(row)

    def list(self) -> list[PolicyView]:
        with self._sessions() as session:
            rows = session.scalars(select(FederationPolicy).order_by(FederationPolicy.workflow))
            return [_policy_view(r) for r in rows]

    def find(self, workflow: str) -> PolicyView | None:
        with self._sessions() as session:
            row = session.scalar(
                select(FederationPolicy).where(FederationPolicy.workflow == workflow)
            )
            return _policy_view(row) if row is not None else None

    # -- datasets -------------------------------------------------------------------------

    def expose(self, *, project: str, dataset: str, name: str | None = None) -> ExposureView:
        """Offer a dataset of ``project`` to federated jobs as ``name`` (default: its own)."""
        target = self._projects.get(project)
        self._datasets.get(target, dataset)  # exists
        exposed = check_name("exposed name", name or dataset)
        try:
            with write_transaction(self._engine) as session:
                session.add(FederationExposure(name=exposed, project_pk=target.id, dataset=dataset))
        except IntegrityError as exc:
            raise Conflict(
                f"the name {exposed!r} or dataset {dataset!r} of {project!r} is exposed already"
            ) from exc
        return self.exposure(exposed)

    def unexpose(self, name: str) -> None:
        with write_transaction(self._engine) as session:
            row = session.scalar(select(FederationExposure).where(FederationExposure.name == name))
            if row is None:
                raise NotFound(f"no dataset is exposed as {name!r}")
            session.delete(row)

    def resolve(self, name: str) -> tuple[Project, str]:
        """The project and dataset exposed as ``name``."""
        with self._sessions() as session:
            row = session.scalar(select(FederationExposure).where(FederationExposure.name == name))
            if row is None:
                raise NotFound(f"no dataset is exposed as {name!r}")
            project = session.get(Project, row.project_pk)
            assert project is not None  # the foreign key cascades
            return project, row.dataset

    def exposure(self, name: str) -> ExposureView:
        project, dataset = self.resolve(name)
        summary = self._datasets.get(project, dataset).summary
        return ExposureView(
            name=name,
            project=project.name,
            dataset=dataset,
            patients=summary.patients,
            studies=summary.studies,
            series=summary.series,
        )

    def exposures(self) -> builtins.list[ExposureView]:
        with self._sessions() as session:
            names = list(
                session.scalars(select(FederationExposure.name).order_by(FederationExposure.name))
            )
        found = []
        for name in names:
            try:
                found.append(self.exposure(name))
            except NotFound:  # the dataset was deleted since; it is simply not offered
                continue
        return found


__all__ = ["ExposureView", "Policies", "PolicyView"]
