"""Settings of one kaapana installation.

Built once by the CLI (or a test) and passed down; nothing reads the environment behind the caller's
back. Sources, strongest first: constructor arguments, ``KAAPANA_*`` environment variables,
``kaapana.toml`` (path from ``KAAPANA_CONFIG`` or the working directory), defaults.
"""

import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


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

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kaapana.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return (self.storage_dir or self.data_dir / "storage").resolve()

    def with_overrides(self, **overrides: Any) -> "Settings":
        """A copy with some values changed and validated again (CLI options on top of the env)."""
        values = self.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Settings(**values)


__all__ = ["DuplicatePolicyValues", "Settings", "UnknownCalledAEValues"]
