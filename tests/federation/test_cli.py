"""``kaapana sites`` and ``kaapana federation`` as an administrator types them."""

import json
from pathlib import Path

from typer.testing import CliRunner

from kaapana.cli import app
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_series
from tests.helpers import part10

runner = CliRunner()


def kaapana(data_dir: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == code, result.output
    return result.output


def test_sites_policies_and_exposure_from_the_command_line(tmp_path: Path) -> None:
    central, hospital = tmp_path / "central", tmp_path / "hospital"
    added = kaapana(central, "sites", "add", "hospital-a")
    secret = next(line for line in added.splitlines() if line.startswith("kpf_"))
    (listed,) = json.loads(kaapana(central, "sites", "list", "--json"))
    assert (listed["name"], listed["role"], listed["datasets"]) == ("hospital-a", "participant", [])
    assert json.loads(kaapana(central, "sites", "show", "--json"))["participants"] == ["hospital-a"]

    with Platform(Settings(data_dir=hospital)) as platform:
        target = platform.archive.target("admin", "cohort")
        for ds in ct_series(rows=16, columns=16, slices=2):
            platform.archive.store_bytes(part10(ds), target, source="test")
        platform.archive.flush()
    orchestrator = [
        "sites",
        "add",
        "central",
        "--role",
        "orchestrator",
        "--url",
        "https://c.example",
    ]
    assert "SHA-256" in kaapana(hospital, *orchestrator, "--secret", secret, "--pin", "ab", code=1)
    assert "enrolment secret" in kaapana(hospital, *orchestrator, "--secret", "kpf_short", code=1)
    kaapana(hospital, *orchestrator, "--secret", secret)
    assert "registered already" in kaapana(hospital, *orchestrator, "--secret", secret, code=1)
    shown = json.loads(kaapana(hospital, "sites", "show", "central", "--json"))
    assert (shown["url"], shown["verify_tls"]) == ("https://c.example", True)

    assert "not found" in kaapana(hospital, "federation", "policy", "allow", "nope", code=1)
    kaapana(
        hospital,
        "federation",
        "policy",
        "allow",
        "federated-statistics",
        "--approval",
        "automatic",
        "--max-output-bytes",
        "4096",
    )
    (policy,) = json.loads(kaapana(hospital, "federation", "policy", "list", "--json"))
    assert (policy["approval"], policy["max_output_bytes"], policy["allow_pixel_data"]) == (
        "automatic",
        4096,
        False,
    )
    assert len(policy["definition_hash"]) == 64
    kaapana(hospital, "federation", "expose", "admin", "cohort", "--name", "ct")
    (exposed,) = json.loads(kaapana(hospital, "federation", "datasets", "--json"))
    assert (exposed["name"], exposed["series"], exposed["patients"]) == ("ct", 1, 1)
    assert json.loads(kaapana(hospital, "federation", "jobs", "--json")) == []
    assert "not found" in kaapana(hospital, "federation", "approve", "nope", code=1)
    kaapana(hospital, "federation", "unexpose", "ct")
    kaapana(hospital, "federation", "policy", "revoke", "federated-statistics")
    kaapana(central, "sites", "remove", "hospital-a")
    assert json.loads(kaapana(central, "sites", "list", "--json")) == []
    assert not (central / "secrets" / "federation" / "hospital-a.key").exists()
