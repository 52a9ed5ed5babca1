"""What an installation holds and runs on: counts per project and, for admins, the system."""

import platform as host
import shutil
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from kaapana import __version__
from kaapana.api.deps import AdminPrincipal, CurrentPrincipal, PlatformDep
from kaapana.api.routes.studies import project_scope
from kaapana.archive.counts import count_archive
from kaapana.platform import Platform

router = APIRouter(tags=["system"])
_VERSIONED = ("fastapi", "pydicom", "pynetdicom", "sqlalchemy", "uvicorn")


class Counts(BaseModel):
    patients: int
    studies: int
    series: int
    instances: int
    stored_bytes: int


class DiskUse(BaseModel):
    path: str
    total_bytes: int
    used_bytes: int
    free_bytes: int


class SystemStatus(BaseModel):
    version: str
    python: str
    database: str
    packages: dict[str, str]
    counts: Counts
    data_dir: DiskUse
    storage_dir: DiskUse


def _disk(path: str) -> DiskUse:
    usage = shutil.disk_usage(path)
    return DiskUse(path=path, total_bytes=usage.total, used_bytes=usage.used, free_bytes=usage.free)


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


@router.get("/projects/{name}/counts", operation_id="project_counts")
def project_counts(
    name: Annotated[str, Path(max_length=64)], platform: PlatformDep, principal: CurrentPrincipal
) -> Counts:
    """Patients, studies, series, instances and stored bytes a project sees."""
    counts = count_archive(platform.engine, projects=project_scope(platform, principal, name))
    return Counts.model_validate(counts, from_attributes=True)


def system_status(platform: Platform) -> SystemStatus:
    """Versions, the whole archive's size, and the disks of the data and storage folders."""
    settings = platform.settings
    return SystemStatus(
        version=__version__,
        python=host.python_version(),
        database=platform.engine.dialect.name,
        packages={name: _version(name) for name in _VERSIONED},
        counts=Counts.model_validate(
            count_archive(platform.engine, projects=None), from_attributes=True
        ),
        data_dir=_disk(str(settings.data_dir.resolve())),
        storage_dir=_disk(str(settings.resolved_storage_dir)),
    )


@router.get("/system", operation_id="system_status")
def get_system_status(platform: PlatformDep, _admin: AdminPrincipal) -> SystemStatus:
    """Versions, the whole archive's size, and the disks of the data and storage folders."""
    return system_status(platform)
