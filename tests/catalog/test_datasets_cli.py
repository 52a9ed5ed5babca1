"""``kaapana datasets`` and ``kaapana series delete`` as a user types them."""

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kaapana.cli import app
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import demo_cohort
from tests.helpers import part10

runner = CliRunner()


class Cli:
    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.options = ["--data-dir", str(data_dir)]
        if database_url:
            self.options += ["--database-url", database_url]

    def __call__(self, *args: str, code: int = 0, input: str | None = None) -> str:
        result = runner.invoke(app, [*self.options, *args], input=input)
        assert result.exit_code == code, result.output
        return result.output


@pytest.fixture
def stored(tmp_path: Path, database_url: str | None) -> tuple[Cli, list[str]]:
    """Project ``P`` with two synthetic patients; the SeriesInstanceUIDs in arrival order."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    with Platform(settings) as platform:
        platform.archive.projects.create("P")
        target = platform.archive.target("P")
        uids: dict[str, None] = {}
        for ds in demo_cohort(patients=2, rows=16, columns=16, slices=2, seed=3):
            platform.archive.store_bytes(part10(ds), target)
            uids[ds.SeriesInstanceUID] = None
    return Cli(tmp_path / "data", database_url), list(uids)


def test_dataset_commands(stored: tuple[Cli, list[str]], tmp_path: Path) -> None:
    kaapana, uids = stored
    listing = tmp_path / "uids.txt"
    listing.write_text("# exported\n" + "\n".join(uids[1:3]) + "\n\n")
    created = kaapana(
        "datasets",
        "create",
        "c1",
        "--project",
        "P",
        "--series",
        uids[0],
        "--from-file",
        str(listing),
        "--json",
    )
    assert json.loads(created)["series"] == 3
    assert "1 series added" in kaapana("datasets", "add", "c1", "--project", "P", uids[3])
    assert "2 series taken out" in kaapana(
        "datasets", "remove", "c1", "--project", "P", uids[0], uids[1]
    )
    kaapana("datasets", "rename", "c1", "cohort one", "--project", "P")
    kaapana("datasets", "describe", "cohort one", "first look", "--project", "P")
    listed = json.loads(kaapana("datasets", "list", "--project", "P", "--json"))
    assert [(d["name"], d["description"], d["series"]) for d in listed] == [
        ("cohort one", "first look", 2)
    ]
    shown = json.loads(kaapana("datasets", "show", "cohort one", "--project", "P", "--json"))
    assert sorted(m["series_instance_uid"] for m in shown["members"]["items"]) == sorted(uids[2:4])
    assert "cohort one" in kaapana("datasets", "show", "cohort one", "--project", "P")
    rows = list(
        csv.DictReader(io.StringIO(kaapana("datasets", "manifest", "cohort one", "--project", "P")))
    )
    assert sorted(r["SeriesInstanceUID"] for r in rows) == sorted(uids[2:4])
    out = tmp_path / "m.json"
    kaapana(
        "datasets",
        "manifest",
        "cohort one",
        "--project",
        "P",
        "--format",
        "json",
        "--output",
        str(out),
    )
    assert len(json.loads(out.read_text())["series"]) == 2
    assert "deleted" in kaapana("datasets", "delete", "cohort one", "--project", "P")
    assert json.loads(kaapana("datasets", "list", "--project", "P", "--json")) == []


def test_dataset_command_errors(stored: tuple[Cli, list[str]], tmp_path: Path) -> None:
    kaapana, uids = stored
    unknown = kaapana("datasets", "create", "x", "--project", "P", "--series", "1.2.3", code=1)
    assert "series not found in the project: '1.2.3'" in unknown
    assert "no project named 'Q'" in kaapana("datasets", "list", "--project", "Q", code=1)
    missing = kaapana("datasets", "show", "nope", "--project", "P", code=1)
    assert "no dataset named 'nope'" in missing
    bad_file = kaapana(
        "datasets", "create", "x", "--project", "P", "--from-file", str(tmp_path / "no"), code=1
    )
    assert "'--from-file' cannot be read" in bad_file
    kaapana("datasets", "create", "x", "--project", "P", "--series", uids[0])
    assert "exists" in kaapana(
        "datasets", "create", "x", "--project", "P", "--series", uids[0], code=1
    )


def test_series_delete_asks_first(stored: tuple[Cli, list[str]]) -> None:
    kaapana, uids = stored
    kaapana("series", "delete", "--project", "P", uids[0], input="n\n", code=1)
    kaapana("datasets", "create", "all", "--project", "P", "--series", uids[0])  # still there
    output = kaapana("series", "delete", "--project", "P", uids[0], input="y\n")
    assert "1 series taken out of P; 1 deleted from the archive" in output
    again = kaapana("series", "delete", "--project", "P", "--yes", uids[0], code=1)
    assert "not found in the project" in again
    listed = json.loads(kaapana("datasets", "list", "--project", "P", "--json"))
    assert listed[0]["series"] == 0
    events = json.loads(kaapana("audit", "--action", "series.delete", "--json"))
    assert len(events) == 1


def test_datasets_from_a_catalog_query(stored: tuple[Cli, list[str]], tmp_path: Path) -> None:
    kaapana, _uids = stored
    kaapana("catalog", "reindex")
    snapshot = json.loads(
        kaapana("datasets", "create", "ct", "--project", "P", "-f", "Modality=CT", "--json")
    )
    assert (snapshot["kind"], snapshot["modalities"]) == ("snapshot", {"CT": snapshot["series"]})
    query = tmp_path / "mr.json"
    query.write_text(json.dumps({"where": {"field": "Modality", "op": "=", "value": "MR"}}))
    live = json.loads(
        kaapana(
            "datasets", "create", "mr", "--project", "P", "--query", f"@{query}", "--live", "--json"
        )
    )
    assert (live["kind"], list(live["modalities"])) == ("live", ["MR"])
    both = kaapana(
        "datasets", "create", "x", "--project", "P", "-f", "Modality=CT", "--series", "1.2", code=1
    )
    assert "not both" in both
    unknown = kaapana("datasets", "create", "x", "--project", "P", "-f", "Modalty=CT", code=1)
    assert "unknown field 'Modalty'" in unknown
    assert "'--live' keeps a query" in kaapana(
        "datasets", "create", "x", "--project", "P", "--live", "--series", "1.2", code=1
    )
