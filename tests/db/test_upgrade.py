"""Migrations upgrade an archive that holds data, not only an empty one."""

import io
from collections.abc import Callable

from alembic import command
from sqlalchemy import func, select

from kaapana.config import Settings
from kaapana.db.migrate import alembic_config
from kaapana.db.models import Series
from kaapana.platform import Platform
from kaapana.testing import ct_series


def test_the_latest_migrations_go_down_and_up_again_over_stored_series(
    make_settings: Callable[..., Settings], database_url: str | None
) -> None:
    settings = make_settings(database_url=database_url)
    with Platform(settings) as platform:
        target = platform.archive.target("admin", None)
        uids = []
        for seed in range(3):
            for ds in ct_series(patient_id=f"U{seed}", rows=16, columns=16, slices=2, seed=seed):
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                platform.archive.store_bytes(buffer.getvalue(), target)
            uids.append(ds.SeriesInstanceUID)
        platform.catalog.index_uids(uids)  # the catalog's rows and text triggers too
        command.downgrade(alembic_config(platform.engine), "0011")
    # Upgraded on start, as after an update.
    with Platform(settings) as platform, platform.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Series)) == 3
        assert conn.scalar(select(func.count()).where(Series.announcing.is_(True))) == 0
