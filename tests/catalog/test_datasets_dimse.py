"""A calling AE title ``kp-<name>`` files received series into dataset ``<name>``."""

from collections.abc import Callable
from pathlib import Path

from kaapana.config import Settings
from kaapana.db.models import DicomNode
from kaapana.dicomnet.scu import send
from kaapana.dimse.scp import start_scp
from kaapana.platform import Platform
from kaapana.testing import ct_series
from tests.helpers import part10


def test_kp_calling_ae_title_lands_in_a_dataset(
    make_settings: Callable[..., Settings], database_url: str | None, tmp_path: Path
) -> None:
    objects = ct_series(patient_id="DIMSE-1", rows=16, columns=16, slices=3, seed=5)
    files = []
    for number, ds in enumerate(objects):
        files.append(tmp_path / f"{number}.dcm")
        files[-1].write_bytes(part10(ds))
    with Platform(make_settings(database_url=database_url)) as platform:
        project = platform.archive.projects.create("lung", ae_title="LUNG")
        server = start_scp(platform, host="127.0.0.1", port=0)
        try:
            node = DicomNode(
                name="kaapana", ae_title="LUNG", host="127.0.0.1", port=server.server_address[1]
            )
            report = send(node, files, calling_ae_title="kp-cohort1")
        finally:
            server.shutdown()
            server.wait_idle(10)
        assert not report.failed
        platform.archive.flush()
        info = platform.datasets.get(project, "cohort1")
        members = platform.datasets.members(project, "cohort1")
    assert (info.kind, info.summary.series, info.summary.instances) == ("selection", 1, 3)
    assert [m.series_instance_uid for m in members.items] == [objects[0].SeriesInstanceUID]
