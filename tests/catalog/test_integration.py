"""The catalog's parts joined: the per-series jobs' results are searchable, and a deleted series
takes its thumbnail along (every removal path, also one finished on the next start)."""

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydicom import Dataset
from sqlalchemy import select

from kaapana.api.app import create_app
from kaapana.archive.deletion import SERIES_INTENT_SUFFIX
from kaapana.catalog import FacetSpec, parse_query, process_arrived_series, thumbnail_key
from kaapana.config import Settings
from kaapana.db.engine import session_factory
from kaapana.db.models import Series
from kaapana.platform import Platform
from kaapana.testing import ct_segmentation, ct_series
from tests.catalog.helpers import arrive, store

NO_DCIODVFY = "kaapana-test-no-dciodvfy"  # the built-in checks: a good series is plainly ok


@pytest.fixture
def media_platform(
    make_settings: Callable[..., Settings], database_url: str | None
) -> Iterator[Platform]:
    settings = make_settings(database_url=database_url, dciodvfy_path=NO_DCIODVFY)
    with Platform(settings) as built:
        yield built


def _found(platform: Platform, where: dict[str, object]) -> list[str]:
    project_pk = platform.archive.projects.get("admin").id
    page = platform.catalog.search(project_pk=project_pk, query=parse_query({"where": where}))
    return sorted(hit.series_instance_uid for hit in page.items)


def _ct(seed: int, slices: int = 5) -> list[Dataset]:
    return ct_series(rows=16, columns=16, slices=slices, seed=seed, patient_id=f"P{seed}")


def _gapped(seed: int) -> list[Dataset]:
    """A CT series with its middle slice missing."""
    series = _ct(seed)
    return series[:2] + series[3:]


def test_references_and_validation_are_searchable(media_platform: Platform) -> None:
    platform = media_platform
    ct, gapped = _ct(41), _gapped(42)
    seg = ct_segmentation(ct, seed=41, labels=["liver"])
    ct_uid, seg_uid = ct[0].SeriesInstanceUID, seg.SeriesInstanceUID
    gapped_uid = gapped[0].SeriesInstanceUID
    store(platform, [*ct, seg, *gapped])
    arrive(platform)

    assert _found(platform, {"field": "referenced_series", "op": "=", "value": ct_uid}) == [seg_uid]
    assert _found(platform, {"field": "referenced_by", "op": "=", "value": seg_uid}) == [ct_uid]
    assert _found(platform, {"field": "referenced_by", "op": "exists"}) == [ct_uid]
    assert _found(platform, {"field": "validation_status", "op": "=", "value": "ok"}) == sorted(
        [ct_uid, seg_uid]
    )
    assert _found(platform, {"field": "validation_status", "op": "=", "value": "error"}) == [
        gapped_uid
    ]
    assert _found(platform, {"field": "complete", "op": "=", "value": "false"}) == [gapped_uid]
    assert _found(platform, {"field": "complete", "op": "=", "value": "true"}) == sorted(
        [ct_uid, seg_uid]
    )
    missing = {"field": "validation_messages", "op": "wildcard", "value": "*MISSING instance*"}
    assert _found(platform, missing) == [gapped_uid]
    spacing = {"field": "completeness_messages", "op": "wildcard", "value": "slice spacing*"}
    assert _found(platform, spacing) == [gapped_uid]

    project_pk = platform.archive.projects.get("admin").id
    (facet,) = platform.catalog.facets(
        project_pk=project_pk,
        query=parse_query(None),
        specs=[FacetSpec(field="validation_status")],
    )
    assert {bucket.value: bucket.count for bucket in facet.buckets} == {"ok": 2, "error": 1}
    page = platform.catalog.search(
        project_pk=project_pk,
        query=parse_query({"sort": [{"field": "validation_status", "order": "asc"}]}),
    )
    assert page.items[0].series_instance_uid == gapped_uid  # "error" sorts before "ok"


@pytest.mark.parametrize("seg_first", [True, False], ids=["seg-first", "image-first"])
def test_either_arrival_order_ends_with_the_same_rows(
    media_platform: Platform, seg_first: bool
) -> None:
    platform = media_platform
    ct = _ct(43)
    seg = ct_segmentation(ct, seed=43, labels=["liver"])
    ct_uid, seg_uid = ct[0].SeriesInstanceUID, seg.SeriesInstanceUID
    store(platform, [seg] if seg_first else ct)
    arrive(platform)
    assert _found(platform, {"field": "referenced_by", "op": "=", "value": seg_uid}) == []

    store(platform, ct if seg_first else [seg])
    arrive(platform)
    assert _found(platform, {"field": "referenced_by", "op": "=", "value": seg_uid}) == [ct_uid]
    assert _found(platform, {"field": "referenced_series", "op": "=", "value": ct_uid}) == [seg_uid]
    assert _found(platform, {"field": "validation_status", "op": "=", "value": "ok"}) == sorted(
        [ct_uid, seg_uid]
    )


def test_referenced_by_lists_only_series_of_a_shared_project(media_platform: Platform) -> None:
    platform = media_platform
    platform.archive.projects.create("other", ae_title="OTHER")
    ct = _ct(44)
    seg = ct_segmentation(ct, seed=44, labels=["liver"])
    store(platform, ct)
    store(platform, [seg], project="other")
    arrive(platform)
    assert _found(platform, {"field": "referenced_by", "op": "exists"}) == []
    assert _found(platform, {"field": "validation_status", "op": "exists"}) == [
        ct[0].SeriesInstanceUID
    ]


def _thumbnails(platform: Platform, series: Sequence[Dataset]) -> list[bool]:
    return [platform.results.exists(thumbnail_key(ds.SeriesInstanceUID)) for ds in series]


def test_deleting_a_series_deletes_its_thumbnail(media_platform: Platform) -> None:
    platform = media_platform
    deleted, kept = _ct(45, slices=2), _ct(46, slices=2)
    store(platform, [*deleted, *kept])
    arrive(platform)
    assert _thumbnails(platform, [deleted[0], kept[0]]) == [True, True]
    project = platform.archive.projects.get("admin")
    removal = platform.series_deletion.delete(
        project, [deleted[0].SeriesInstanceUID], actor="admin"
    )
    assert removal.series_deleted == 1
    assert _thumbnails(platform, [deleted[0], kept[0]]) == [False, True]
    assert list(platform.removal_intents.glob("*")) == []


def test_a_series_still_held_by_a_project_keeps_its_thumbnail(media_platform: Platform) -> None:
    platform = media_platform
    other = platform.archive.projects.create("other", ae_title="OTHER")
    series = _ct(47, slices=2)
    store(platform, series)
    store(platform, series, project="other")
    arrive(platform)
    removal = platform.series_deletion.delete(other, [series[0].SeriesInstanceUID], actor="admin")
    assert (removal.series_unlinked, removal.series_deleted) == (1, 0)
    assert _thumbnails(platform, series[:1]) == [True]


def test_dicomweb_delete_deletes_the_thumbnail(media_platform: Platform) -> None:
    platform = media_platform
    series = _ct(48, slices=2)
    store(platform, series)
    arrive(platform)
    assert _thumbnails(platform, series[:1]) == [True]
    admin = platform.auth.users.get("admin")
    token = platform.auth.tokens.issue(admin, name="test", can_write=True).secret
    with TestClient(create_app(platform.settings, platform=platform)) as client:
        answer = client.delete(
            f"/dicomweb/studies/{series[0].StudyInstanceUID}/series/{series[0].SeriesInstanceUID}",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code in (200, 204), answer.text
    assert _thumbnails(platform, series[:1]) == [False]


def test_an_interrupted_removal_deletes_the_thumbnails_on_start(
    make_settings: Callable[..., Settings], database_url: str | None
) -> None:
    settings = make_settings(database_url=database_url, dciodvfy_path=NO_DCIODVFY)
    kept = _ct(49, slices=2)
    gone = _ct(50, slices=2)[0]
    with Platform(settings) as platform:
        store(platform, kept)
        arrive(platform)
        # What a crash after the commit leaves: the thumbnail of a deleted series and the intent
        # naming it; the intent of a removal that rolled back names a series that still exists.
        platform.results.put(thumbnail_key(gone.SeriesInstanceUID), b"png")
        intents: Path = platform.removal_intents
        intents.mkdir(parents=True, exist_ok=True)
        (intents / f"crashed{SERIES_INTENT_SUFFIX}").write_text(
            f"{gone.SeriesInstanceUID}\n{kept[0].SeriesInstanceUID}\n"
        )
    with Platform(settings) as restarted:
        assert _thumbnails(restarted, [gone, kept[0]]) == [False, True]
        assert list(intents.glob(f"*{SERIES_INTENT_SUFFIX}")) == []


def test_processing_answers_the_series_whose_rows_changed(media_platform: Platform) -> None:
    platform = media_platform
    ct = _ct(51, slices=2)
    seg = ct_segmentation(ct, seed=51, labels=["liver"])
    store(platform, [*ct, seg])
    with session_factory(platform.engine)() as session:
        rows = session.execute(select(Series.series_instance_uid, Series.id))
        pks = {uid: pk for uid, pk in rows}
    media = platform.series_media
    ct_pk, seg_pk = pks[ct[0].SeriesInstanceUID], pks[seg.SeriesInstanceUID]
    assert process_arrived_series(media, seg.SeriesInstanceUID) == [seg_pk, ct_pk]
    assert process_arrived_series(media, ct[0].SeriesInstanceUID) == [ct_pk, seg_pk]
    assert process_arrived_series(media, "1.2.3.404") == []
