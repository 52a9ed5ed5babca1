"""Settings of one kaapana installation.

Built once by the CLI (or a test) and passed down; nothing reads the environment behind the caller's
back. Sources, strongest first: constructor arguments, ``KAAPANA_*`` environment variables,
``kaapana.toml`` (path from ``KAAPANA_CONFIG`` or the working directory), defaults.
"""

import os
import re
import socket
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kaapana.auth.passwords import HashProfileValues


class DuplicatePolicyValues(StrEnum):
    """What happens when a SOP Instance UID arrives again with different bytes."""

    replace = "replace"
    reject = "reject"


class UnknownCalledAEValues(StrEnum):
    """What happens to an association whose called AE title names no project."""

    reject = "reject"
    accept = "accept"


def _toml_path() -> Path:
    return Path(os.environ.get("KAAPANA_CONFIG", "kaapana.toml"))


class Settings(BaseSettings):
    """Every knob of an installation; each one documented, because operators read them here."""

    model_config = SettingsConfigDict(env_prefix="KAAPANA_", extra="forbid", validate_default=True)

    data_dir: Path = Field(
        Path("kaapana-data"),
        description="Root folder for the database, stored objects and results.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the index; default: SQLite file `kaapana.db` in the data "
        "dir "
        "(WAL mode). PostgreSQL: `postgresql+psycopg://user@host/db`.",
    )
    storage_dir: Path | None = Field(
        None, description="Folder of the object store; default: `storage` in the data dir."
    )
    ae_title: str = Field("KAAPANA", description="AE title of the DICOM SCP and SCU.")
    dicom_port: int = Field(11112, ge=0, le=65535, description="TCP port of the DICOM SCP.")
    http_port: int = Field(8080, ge=0, le=65535, description="TCP port of the HTTP server.")
    host: str = Field(
        "127.0.0.1", description="Address both servers bind to; `0.0.0.0` exposes them."
    )
    dicom_workers: int = Field(
        0,
        ge=0,
        le=64,
        description="DICOM receiver processes accepting from the one DICOM port (a connection goes "
        "to the receiver with the fewest associations); 0 picks one per CPU core, 1 receives in "
        "the main process.",
    )
    max_pdu_size: int = Field(
        4 * 1024 * 1024,
        ge=0,
        description="Largest P-DATA PDU the SCP accepts, in bytes; large PDUs cut per-PDU "
        "overhead.",
    )
    max_associations: int = Field(
        32, ge=1, description="Concurrent associations per receiver process."
    )
    series_quiet_seconds: float = Field(
        10.0,
        gt=0,
        description="A series is complete after this long without new instances; then the "
        "SeriesArrived event fires.",
    )
    duplicate_policy: DuplicatePolicyValues = Field(
        DuplicatePolicyValues.replace,
        description="Same SOP Instance UID with different bytes: `replace` the stored object or "
        "`reject` the new one. Identical bytes are always a no-op success.",
    )
    unknown_called_ae: UnknownCalledAEValues = Field(
        UnknownCalledAEValues.reject,
        description="Association to a called AE title no project owns: `reject` it, or `accept` "
        "into the `admin` project.",
    )
    index_batch_size: int = Field(
        256, ge=1, description="Most instances written to the index in one transaction."
    )
    index_batch_delay: float = Field(
        0.0,
        ge=0,
        description="Seconds the index writer of waiting stores (import, check) waits for more "
        "instances before committing a batch; 0 commits what has queued at once (batches still "
        "form during a commit). Received objects are indexed from the journals every 20 ms.",
    )
    admin_password: SecretStr | None = Field(
        None,
        description="Password of the `admin` user created on first start; unset, a random one "
        "is generated and printed once.",
    )
    password_hash_profile: HashProfileValues = Field(
        HashProfileValues.RFC_9106_LOW_MEMORY,
        description="Argon2id parameters of new password hashes (argon2-cffi profile); "
        "`CHEAPEST` is for test suites only.",
    )
    session_hours: float = Field(
        12.0, gt=0, description="Lifetime of a browser login session, in hours."
    )
    login_max_failures: int = Field(
        5,
        ge=1,
        description="Failed logins per user (and 4x that per client address) within 15 minutes "
        "before further attempts must wait, doubling each time up to 15 minutes.",
    )
    oidc_issuer: str | None = Field(
        None,
        description="Issuer URL of an OpenID Connect provider (e.g. a Keycloak realm) whose "
        "bearer JWTs are accepted; unset disables OIDC.",
    )
    oidc_audience: str | None = Field(
        None, description="Required `aud` of OIDC tokens (the client id); unset skips the check."
    )
    oidc_jwks_url: str | None = Field(
        None,
        description="Where the provider's signing keys are; default: `jwks_uri` from the "
        "issuer's `/.well-known/openid-configuration`.",
    )
    oidc_username_claim: str = Field(
        "preferred_username", description="Claim that names the kaapana user of an OIDC token."
    )
    oidc_roles_claim: str = Field(
        "kaapana_roles",
        description="Claim listing roles as `admin` or `<project>:<role>` strings "
        "(`scientist`, `principal_investigator`); synchronised into memberships at each login.",
    )
    oidc_client_id: str | None = Field(
        None,
        description="Client id of kaapana at the OIDC provider; set (with `oidc_issuer`), the "
        "login page offers OIDC login (authorization-code flow with PKCE). Register "
        "`<public_url>/auth/oidc/callback` as its redirect URI.",
    )
    oidc_client_secret: SecretStr | None = Field(
        None,
        description="Secret of a confidential OIDC client, sent to the token endpoint "
        "(HTTP Basic); unset for a public client.",
    )
    oidc_scopes: str = Field(
        "openid profile", description="Scopes requested at the OIDC authorization endpoint."
    )
    tls_certfile: Path | None = Field(
        None, description="PEM certificate chain: with `tls_keyfile`, HTTP is served over TLS."
    )
    tls_keyfile: Path | None = Field(None, description="PEM private key of `tls_certfile`.")
    public_url: str | None = Field(
        None,
        description="External base URL (e.g. `https://pacs.example.org`) for the URLs in "
        "DICOMweb answers; set it behind a reverse proxy. Unset: taken from each request.",
    )
    stow_max_bytes: int = Field(
        4 * 1024**3,
        ge=1024,
        description="Largest STOW-RS request body in bytes; larger ones are refused with 413.",
    )
    results_dir: Path | None = Field(
        None,
        description="Folder of result storage (thumbnails, workflow results); default: `results` "
        "in the data dir.",
    )
    dciodvfy_path: str = Field(
        "dciodvfy",
        description="The `dciodvfy` validator of dicom3tools (a name on PATH or a path); where it "
        "is missing, series are validated with built-in pydicom checks.",
    )
    work_dir: Path | None = Field(
        None,
        description="Working folders of workflow runs (`<work>/<run>/batch/<series>/<step>/`); "
        "default: `work` in the data dir. With a remote Dask cluster it must be a path every "
        "worker shares.",
    )
    plugins_dir: Path | None = Field(
        None,
        description="Folder of workflow plugins (`*.py`, `*.yaml`), read again on "
        "`kaapana workflows reload`; default: `plugins` in the data dir.",
    )
    ohif_dir: Path | None = Field(
        None,
        description="Folder of the OHIF Viewer that `kaapana viewer install-ohif` fetches and "
        "`kaapana serve` serves at `/ohif`; default: `ohif` in the data dir.",
    )
    workflow_entry_points: bool = Field(
        True,
        description="Load workflows that installed packages declare in the entry point group "
        "`kaapana.workflows`.",
    )
    dask_scheduler: str | None = Field(
        None,
        description="Address of an existing Dask scheduler (`tcp://host:8786`) that runs "
        "workflow tasks; unset: a local cluster of worker processes starts with the first run.",
    )
    dask_workers: int = Field(
        0,
        ge=0,
        le=256,
        description="Worker processes of the local Dask cluster (one thread each); 0 picks one "
        "per CPU core.",
    )
    max_parallel_tasks: int = Field(
        64,
        ge=1,
        description="Most workflow tasks handed to the executor at once, over all runs.",
    )
    retry_backoff_seconds: float = Field(
        2.0,
        ge=0,
        description="Wait before the first retry of a failed task; doubled for each further "
        "attempt.",
    )

    site_name: str | None = Field(
        None,
        description="Name of this installation in a federation; default: the host name and the "
        "AE title, lower-case (`host-kaapana`).",
    )
    federation_poll_seconds: float = Field(
        5.0,
        gt=0,
        le=300,
        description="How long a participant's poll of its orchestrator waits for a job (the "
        "orchestrator answers at once when one is waiting), and the pause after a failed poll.",
    )
    federation_max_output_bytes: int = Field(
        10 * 1024**2,
        ge=1,
        description="Default size limit of what one federated job may upload, in bytes; a "
        "workflow's policy can set its own.",
    )
    federation_upload_max_age_seconds: float = Field(
        900.0,
        gt=0,
        description="Oldest encrypted upload (by the timestamp inside it) the orchestrator "
        "accepts; older ones are refused as possible replays.",
    )

    @field_validator("ae_title")
    @classmethod
    def _check_ae_title(cls, value: str) -> str:
        if not 0 < len(value) <= 16 or "\\" in value or not value.isprintable():
            raise ValueError(f"'ae_title' must be 1-16 printable characters, got {value!r}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()),
        )

    def anchored(self) -> "Settings":
        """The same settings with every folder and the database absolute, resolved against this
        process's working directory: for code that runs in another one (a service task runs in
        its attempt folder), where ``kaapana-data`` would name another, empty archive."""
        paths = {
            name: value.resolve()
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), Path)
        }
        return self.model_copy(update={**paths, "database_url": self.resolved_database_url})

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kaapana.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return (self.storage_dir or self.data_dir / "storage").resolve()

    @property
    def resolved_results_dir(self) -> Path:
        return (self.results_dir or self.data_dir / "results").resolve()

    @property
    def resolved_work_dir(self) -> Path:
        return (self.work_dir or self.data_dir / "work").resolve()

    @property
    def resolved_plugins_dir(self) -> Path:
        return (self.plugins_dir or self.data_dir / "plugins").resolve()

    @property
    def resolved_ohif_dir(self) -> Path:
        return (self.ohif_dir or self.data_dir / "ohif").resolve()

    @property
    def resolved_site_name(self) -> str:
        if self.site_name:
            return self.site_name
        raw = f"{socket.gethostname()}-{self.ae_title}".lower()
        return re.sub(r"[^a-z0-9._-]+", "-", raw).strip("-._")[:64] or "kaapana"

    def with_overrides(self, **overrides: Any) -> "Settings":
        """A copy with some values changed and validated again (CLI options on top of the env)."""
        values = self.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Settings(**values)


__all__ = ["DuplicatePolicyValues", "Settings", "UnknownCalledAEValues"]
