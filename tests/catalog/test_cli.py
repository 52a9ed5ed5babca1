"""``kaapana search``, ``tags`` and ``catalog`` as a user types them."""

import json
from pathlib import Path

from typer.testing import CliRunner

from kaapana.cli import app
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_series, mr_series
from tests.catalog.conftest import store

runner = CliRunner()


def kaapana(data_dir: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == code, result.output
    return result.output


def _archive(data: Path) -> tuple[str, str]:
    ct = ct_series(patient_id="CLI1", rows=16, columns=16, slices=2, slice_thickness=1.0, seed=3)
    mr = mr_series(patient_id="CLI2", rows=16, columns=16, slices=2, seed=4)
    with Platform(Settings(data_dir=data)) as platform:
        store(platform, tuple(ct + mr), "admin")
    return ct[0].SeriesInstanceUID, mr[0].SeriesInstanceUID


def test_search_tags_and_reindex(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ct_uid, mr_uid = _archive(data)
    assert "2 series indexed" in kaapana(data, "catalog", "reindex")
    found = json.loads(kaapana(data, "search", "--json", "-f", "SliceThickness<=1.5"))
    assert [item["series_instance_uid"] for item in found["items"]] == [ct_uid]
    query_file = tmp_path / "q.json"
    query_file.write_text(json.dumps({"where": {"field": "Modality", "op": "=", "value": "MR"}}))
    from_file = json.loads(kaapana(data, "search", "--json", f"@{query_file}"))
    assert [item["series_instance_uid"] for item in from_file["items"]] == [mr_uid]
    text = json.loads(kaapana(data, "search", "--json", "--text", "head", "-f", "Modality=MR"))
    assert [item["series_instance_uid"] for item in text["items"]] == [mr_uid]
    table = kaapana(data, "search", "--sort", "-StudyDate", "--limit", "1")
    assert "CLI" in table and "more: --cursor" in table

    assert "added to 1 series" in kaapana(data, "tags", "add", "excluded", ct_uid)
    listed = json.loads(kaapana(data, "tags", "list", "--json"))
    assert listed == [{"tag": "excluded", "series": 1}]
    kept = json.loads(kaapana(data, "search", "--json", "-f", "tags!=excluded"))
    assert [item["series_instance_uid"] for item in kept["items"]] == [mr_uid]
    assert "removed from 1 series" in kaapana(data, "tags", "remove", "excluded", ct_uid)
    assert json.loads(kaapana(data, "tags", "list", "--json")) == []

    fields = json.loads(kaapana(data, "catalog", "fields", "--json", "--prefix", "slice"))
    assert {f["field"] for f in fields} == {"SliceThickness"}
    assert "SliceThickness" in kaapana(data, "catalog", "fields")


def test_search_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    malformed = kaapana(data, "search", '{"where": {"field": ', code=1)
    assert "not valid JSON" in malformed and "line 1, column 21" in malformed
    unknown = kaapana(data, "search", "-f", "Nope=1", code=1)
    assert "unknown field 'Nope'" in unknown
    missing = kaapana(data, "search", f"@{tmp_path / 'none.json'}", code=1)
    assert "query file" in missing
    assert "not found" in kaapana(data, "tags", "add", "x", "1.2.3", code=1)
