"""The index: what the archive knows about every stored object, and who may see it.

The attributes that C-FIND and QIDO-RS match on are indexed columns; everything else lives in the
precomputed DICOM JSON (PS3.18 F.2), so queries and metadata requests never open a file.
Date and time columns keep DICOM's own string forms (DA ``YYYYMMDD``, TM ``HHMMSS.FFFFFF``): they
sort and compare as strings, which is exactly what range matching needs.
"""

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JsonDict = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Naive UTC, the one form both engines store and compare alike."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JsonDict}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    ae_title: Mapped[str | None] = mapped_column(String(16), unique=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    # DIMSE access rules; None admits any calling AE title / any address.
    allowed_calling_ae_titles: Mapped[list[str] | None] = mapped_column(JsonDict)
    allowed_networks: Mapped[list[str] | None] = mapped_column(JsonDict)
    dimse_identity_required: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("patient_id", "issuer_of_patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    issuer_of_patient_id: Mapped[str] = mapped_column(String(64), default="")
    patient_name: Mapped[str] = mapped_column(String(324), default="", index=True)
    patient_birth_date: Mapped[str] = mapped_column(String(8), default="")
    patient_sex: Mapped[str] = mapped_column(String(16), default="")


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    patient_pk: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    study_date: Mapped[str] = mapped_column(String(8), default="", index=True)
    study_time: Mapped[str] = mapped_column(String(16), default="")
    accession_number: Mapped[str] = mapped_column(String(16), default="", index=True)
    study_id: Mapped[str] = mapped_column(String(16), default="")
    study_description: Mapped[str] = mapped_column(String(64), default="")
    referring_physician_name: Mapped[str] = mapped_column(String(324), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    patient: Mapped[Patient] = relationship()


class Series(Base):
    __tablename__ = "series"
    __table_args__ = (Index("ix_series_unstable", "stable_at", "last_received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    modality: Mapped[str] = mapped_column(String(16), default="", index=True)
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str] = mapped_column(String(64), default="")
    body_part_examined: Mapped[str] = mapped_column(String(16), default="")
    series_date: Mapped[str] = mapped_column(String(8), default="")
    series_time: Mapped[str] = mapped_column(String(16), default="")
    number_of_instances: Mapped[int] = mapped_column(Integer, default=0)
    metadata_json: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    stable_at: Mapped[datetime | None] = mapped_column(DateTime)
    announcing: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), index=True
    )
    """Stable, and not every ``SeriesArrived`` handler has run for it yet (a crash came)."""
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    study: Mapped[Study] = relationship()


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64), index=True)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(512), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    number_of_frames: Mapped[int] = mapped_column(Integer, default=1)
    metadata_json: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    series: Mapped[Series] = relationship()


class SeriesProject(Base):
    """Data is stored once and made visible to projects."""

    __tablename__ = "series_projects"

    series_pk: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Dataset(Base):
    """A named set of series in a project (a cohort)."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_pk: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # selection | snapshot (members in dataset_series) | live (members = ``query`` at read time)
    kind: Mapped[str] = mapped_column(String(16), default="selection", server_default="selection")
    query: Mapped[dict[str, Any] | None] = mapped_column(JsonDict)


class DatasetSeries(Base):
    __tablename__ = "dataset_series"

    dataset_pk: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    series_pk: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class DicomNode(Base):
    """A remote application entity we send to and that may retrieve from us (C-MOVE destination)."""

    __tablename__ = "dicom_nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    ae_title: Mapped[str] = mapped_column(String(16), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class User(Base):
    """A person or service account; ``password_hash`` is None for users who sign in via OIDC."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)


class Membership(Base):
    __tablename__ = "memberships"

    user_pk: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(32))


class ApiToken(Base):
    """Only the SHA-256 of a token is kept: the token itself is shown once, at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_pk: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    projects: Mapped[list[str] | None] = mapped_column(JsonDict)
    can_write: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LoginSession(Base):
    """A browser session; the cookie holds a random id whose SHA-256 is the key here."""

    __tablename__ = "login_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_pk: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_action_time", "action", "time"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="success")
    target: Mapped[str] = mapped_column(String(1024), default="")
    project: Mapped[str | None] = mapped_column(String(64), index=True)
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SeriesReference(Base):
    """An image series that a SEG, RTSTRUCT or SR series points at, by UID: the referenced
    series may arrive later, and the index on the UID makes the reverse link one lookup."""

    __tablename__ = "series_references"

    series_pk: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    referenced_series_uid: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class SeriesValidation(Base):
    """The latest validation of a series: its status and the findings behind it."""

    __tablename__ = "series_validation"

    series_pk: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), index=True)
    errors: Mapped[list[str]] = mapped_column(JsonDict, default=list)
    warnings: Mapped[list[str]] = mapped_column(JsonDict, default=list)
    validator: Mapped[str] = mapped_column(String(32))
    checked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Run(Base):
    """One execution of a workflow version over a set of series; the scheduler owns its state."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_state", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    workflow: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    definition_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    created_by: Mapped[str] = mapped_column(String(255), default="")
    rerun_of: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    error: Mapped[str] = mapped_column(String(4096), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class RunInput(Base):
    """The series a run was started on, in order."""

    __tablename__ = "run_inputs"

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    series_pk: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class Task(Base):
    """One step of a run, for one series (``per_series``) or for all of them (``per_run``)."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("run_pk", "step", "series_instance_uid"),
        Index("ix_tasks_run_state", "run_pk", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(128))
    # "" for a per-run task: a unique constraint treats NULLs as distinct.
    series_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # Succeeded executions of a gated step's task, which runs once per time its gate lets it.
    executions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_before: Mapped[datetime | None] = mapped_column(DateTime)
    worker: Mapped[str] = mapped_column(String(255), default="")
    error: Mapped[str] = mapped_column(String(4096), default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Artifact(Base):
    """A file of a run kept in result storage (outputs declared by ``add_artifact``, manifests)."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("run_pk", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    task_pk: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(512))
    storage_key: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RunOutput(Base):
    """Provenance of DICOM a run stored into the archive: which task made it, from which series."""

    __tablename__ = "run_outputs"

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_pk: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    source_series_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    sha256: Mapped[str] = mapped_column(String(64))


class TriggerRule(Base):
    """Starts a workflow in a project when a matching series arrives (``SeriesArrived``)."""

    __tablename__ = "trigger_rules"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_pk: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    workflow: Mapped[str] = mapped_column(String(128))
    # A catalog query; None matches every series arriving in the project.
    query: Mapped[dict[str, Any] | None] = mapped_column(JsonDict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SeriesAttribute(Base):
    """One value of one catalog field of a series: the flattened, typed search index.

    Rebuilt from the series' DICOM JSON whenever the series is (re)indexed; one row per distinct
    value, so counting rows per value counts series. Sequence paths are dotted keywords.
    """

    __tablename__ = "series_attributes"
    __table_args__ = (
        Index("ix_series_attributes_text", "field", "text_value", "series_pk"),
        Index("ix_series_attributes_number", "field", "number_value", "series_pk"),
        Index("ix_series_attributes_series", "series_pk", "field"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(255))
    text_value: Mapped[str] = mapped_column(String(1024))
    number_value: Mapped[float | None] = mapped_column(Float)


class CatalogGeneration(Base):
    """How often the search index was written: one row, counted up by every indexing
    transaction, so a process can tell that what it derived from the index is still current
    (the field list of ``GET /fields``), also when another process wrote it."""

    __tablename__ = "catalog_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class SeriesText(Base):
    """The free-text document of a series (descriptions, names, labels), full-text indexed."""

    __tablename__ = "series_text"

    series_pk: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    body: Mapped[str] = mapped_column(Text, default="")


class SeriesTag(Base):
    """A researcher's label on a series, per project (``excluded``, ``reviewed``, ...)."""

    __tablename__ = "series_tags"
    __table_args__ = (Index("ix_series_tags_project_tag", "project_pk", "tag"),)

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    series_pk: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class Model(Base):
    """A trained model in the registry: one version of a name in a project, with the run that
    trained it and where its file lies in result storage."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("project_pk", "name", "version"),
        UniqueConstraint("run_pk", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_pk: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    labels: Mapped[list[dict[str, Any]]] = mapped_column(JsonDict, default=list)
    modality: Mapped[str] = mapped_column(String(16))
    # The training run; kept when the run is deleted, as the file stays in result storage.
    run_pk: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    storage_key: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SeriesFeature(Base):
    """A number computed for a series by a workflow (radiomics of a SEG's segments), indexed by
    the catalog as the field ``<source>.<name>``; a source's features of a series are replaced
    as a whole."""

    __tablename__ = "series_features"

    series_pk: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(191), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class FederationPeer(Base):
    """Another installation: a participant (at an orchestrator) or the orchestrator (at a
    participant). Tokens are kept as SHA-256 only; keys live in the secrets folder."""

    __tablename__ = "federation_peers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(1024), default="")
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True)
    pinned_sha256: Mapped[str] = mapped_column(String(64), default="")
    # What a participant last reported it exposes: dataset names and counts only.
    datasets: Mapped[list[dict[str, Any]]] = mapped_column(JsonDict, default=list)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FederationPolicy(Base):
    """A participant's approval of one workflow, pinned to its definition hash."""

    __tablename__ = "federation_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow: Mapped[str] = mapped_column(String(128), unique=True)
    definition_hash: Mapped[str] = mapped_column(String(64))
    approval: Mapped[str] = mapped_column(String(16), default="manual")
    max_output_bytes: Mapped[int] = mapped_column(BigInteger)
    allow_pixel_data: Mapped[bool] = mapped_column(Boolean, default=False)
    share_logs: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by: Mapped[str] = mapped_column(String(255), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FederationExposure(Base):
    """A dataset a participant offers to federated jobs under its own name."""

    __tablename__ = "federation_exposures"
    __table_args__ = (UniqueConstraint("project_pk", "dataset"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    project_pk: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FederatedRun(Base):
    """A federated workflow at the orchestrator: rounds over sites; ``finished_rounds`` and the
    global artifact are committed together, so a restart resumes after the last finished round."""

    __tablename__ = "federated_runs"
    __table_args__ = (Index("ix_federated_runs_state", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan: Mapped[str] = mapped_column(String(128))
    workflow: Mapped[str] = mapped_column(String(128))
    definition_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dataset: Mapped[str] = mapped_column(String(64))
    sites: Mapped[list[str]] = mapped_column(JsonDict, default=list)
    rounds: Mapped[int] = mapped_column(Integer, default=1)
    finished_rounds: Mapped[int] = mapped_column(Integer, default=0)
    min_sites: Mapped[int] = mapped_column(Integer, default=1)
    site_timeout: Mapped[float] = mapped_column(Float, default=3600.0)
    state: Mapped[str] = mapped_column(String(16), default="running")
    global_key: Mapped[str] = mapped_column(String(1024), default="")
    # The workflow engine's run of the central workflow that drives the rounds.
    run_pk: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDict)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JsonDict, default=list)
    error: Mapped[str] = mapped_column(String(4096), default="")
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class FederatedJob(Base):
    """One round of a federated run at one site, as the orchestrator sees it."""

    __tablename__ = "federated_jobs"
    __table_args__ = (
        UniqueConstraint("run_pk", "round", "site"),
        Index("ix_federated_jobs_site_state", "site", "state"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("federated_runs.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    site: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(24), default="queued")
    detail: Mapped[str] = mapped_column(String(4096), default="")
    input_key: Mapped[str] = mapped_column(String(1024), default="")
    # name -> {"key", "size", "sha256"} of the received, decrypted outputs in result storage.
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    logs_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    logs: Mapped[str] = mapped_column(Text, default="")
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # The final model pushed to the site with this job ("" none, offered, registered, refused).
    model_push: Mapped[str] = mapped_column(String(24), default="", server_default="")
    model_push_detail: Mapped[str] = mapped_column(String(1024), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class FederationNonce(Base):
    """Nonces of accepted uploads: one seen again is a replay."""

    __tablename__ = "federation_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SiteJob(Base):
    """A job received from the orchestrator, as the participant decides and runs it."""

    __tablename__ = "site_jobs"
    __table_args__ = (Index("ix_site_jobs_state", "state"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    orchestrator: Mapped[str] = mapped_column(String(64))
    federated_run: Mapped[int] = mapped_column(Integer, default=0)
    round: Mapped[int] = mapped_column(Integer, default=1)
    workflow: Mapped[str] = mapped_column(String(128))
    definition_hash: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requester: Mapped[str] = mapped_column(String(255), default="")
    outputs: Mapped[list[str]] = mapped_column(JsonDict, default=list)
    has_input: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(24))
    reported: Mapped[str] = mapped_column(String(24), default="")
    reason: Mapped[str] = mapped_column(String(4096), default="")
    run_pk: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    decided_by: Mapped[str] = mapped_column(String(255), default="")
    uploaded_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


__all__ = [
    "ApiToken",
    "Artifact",
    "AuditEvent",
    "Base",
    "CatalogGeneration",
    "Dataset",
    "DatasetSeries",
    "DicomNode",
    "FederatedJob",
    "FederatedRun",
    "FederationExposure",
    "FederationNonce",
    "FederationPeer",
    "FederationPolicy",
    "Instance",
    "LoginSession",
    "Membership",
    "Model",
    "Patient",
    "Project",
    "Run",
    "RunInput",
    "RunOutput",
    "Series",
    "SeriesAttribute",
    "SeriesFeature",
    "SeriesProject",
    "SeriesReference",
    "SeriesTag",
    "SeriesText",
    "SeriesValidation",
    "SiteJob",
    "Study",
    "Task",
    "TriggerRule",
    "User",
    "utcnow",
]
