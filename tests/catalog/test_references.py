"""Which image series a SEG, RTSTRUCT or SR references, and the reverse link."""

from pydicom import Dataset
from pydicom.uid import generate_uid

from kaapana.catalog import referenced_series_uids, referencing_series
from kaapana.catalog.references import stored_references
from kaapana.db.engine import session_factory
from kaapana.db.models import Series
from kaapana.platform import Platform
from kaapana.testing import ct_segmentation, ct_series
from tests.api.conftest import Site
from tests.catalog.helpers import arrive, sr_referencing, store


def _json(ds: Dataset) -> dict[str, object]:
    return {tag: value for tag, value in ds.to_json_dict().items() if tag != "7FE00010"}


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def test_the_references_of_seg_sr_and_rtstruct() -> None:
    ct = ct_series(rows=16, columns=16, slices=3, seed=21)
    image_uid = ct[0].SeriesInstanceUID
    seg = ct_segmentation(ct, seed=21, labels=["body"])
    assert referenced_series_uids(_json(seg)) == {image_uid}

    sr = sr_referencing(ct)
    other = generate_uid()
    sr.PertinentOtherEvidenceSequence = [
        _item(
            StudyInstanceUID=ct[0].StudyInstanceUID,
            ReferencedSeriesSequence=[_item(SeriesInstanceUID=other)],
        )
    ]
    assert referenced_series_uids(_json(sr)) == {image_uid, other}

    rtstruct = _item(
        SeriesInstanceUID=generate_uid(),
        ReferencedFrameOfReferenceSequence=[
            _item(
                FrameOfReferenceUID=ct[0].FrameOfReferenceUID,
                RTReferencedStudySequence=[
                    _item(
                        ReferencedSOPInstanceUID=ct[0].StudyInstanceUID,
                        RTReferencedSeriesSequence=[_item(SeriesInstanceUID=image_uid)],
                    )
                ],
            )
        ],
    )
    assert referenced_series_uids(_json(rtstruct)) == {image_uid}
    assert referenced_series_uids(_json(ct[0])) == set()


def _series_uids(series: list[Series]) -> list[str]:
    return [s.series_instance_uid for s in series]


def test_the_reverse_link_also_before_the_image_arrives(platform: Platform) -> None:
    ct = ct_series(rows=16, columns=16, slices=3, seed=22)
    image_uid = ct[0].SeriesInstanceUID
    seg = ct_segmentation(ct, seed=22, labels=["body"])
    sr = sr_referencing(ct)
    store(platform, [seg, sr])
    arrive(platform)
    with session_factory(platform.engine)() as session:
        assert sorted(_series_uids(referencing_series(session, image_uid))) == sorted(
            [seg.SeriesInstanceUID, sr.SeriesInstanceUID]
        )
        seg_pk = session.query(Series.id).filter_by(series_instance_uid=seg.SeriesInstanceUID)
        assert stored_references(session, seg_pk.scalar()) == [image_uid]
        assert referencing_series(session, seg.SeriesInstanceUID) == []
    store(platform, ct)
    arrive(platform)
    with session_factory(platform.engine)() as session:
        assert len(referencing_series(session, image_uid)) == 2
        image = session.query(Series).filter_by(series_instance_uid=image_uid).one()
        assert stored_references(session, image.id) == []


def test_rest_references_within_the_project(site: Site) -> None:
    ct = site.study_a[:4]
    image_uid = ct[0].SeriesInstanceUID
    seg = ct_segmentation(ct, seed=1, labels=["body"])
    store(site.platform, [seg], project="B")
    arrive(site.platform)

    def references(uid: str, who: str) -> dict[str, object]:
        answer = site.get(f"/api/v1/series/{uid}/references", who=who)
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    assert references(image_uid, "admin") == {
        "series_instance_uid": image_uid,
        "references": [],
        "referenced_by": [seg.SeriesInstanceUID],
    }
    assert references(image_uid, "sci_a")["referenced_by"] == []  # the SEG lies in project B
    assert references(seg.SeriesInstanceUID, "sci_b")["references"] == [image_uid]
    answer = site.get(f"/api/v1/series/{image_uid}/references", who="sci_b")
    assert answer.status_code == 404
