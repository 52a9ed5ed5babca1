"""Federation as it runs between hospitals: an orchestrator and three participants, each a
separate ``kaapana serve`` with its own data folder, port and synthetic patients, on loopback:
federated training with the final model pushed to the sites, then federated statistics with a
data owner's approval, refusals, a site offline and the orchestrator restarted."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from kaapana.cli import app
from kaapana.config import Settings
from kaapana.federation.aggregation import unpack_files
from kaapana.federation.outputs import looks_like_dicom, looks_like_numpy
from kaapana.federation.training import MODEL_NAME, UPDATE_NAME
from kaapana.platform import Platform
from tests.federation.cohort import (
    TINY_TRAINING,
    assert_statistics_equal,
    dice_of,
    direct_statistics,
    held_out,
    load_dataset,
    lung_case,
    write_patient,
)
from tests.helpers import free_port, part10, wait_until

pytestmark = [pytest.mark.slow]
PLAN = "federated-statistics"
TRAINING = "federated-training"
ADMIN_PASSWORD = "federation-admin-1"
PATIENTS = {"site-a": ["PA1", "PA2"], "site-b": ["PB1"], "site-c": ["PC1"]}
LUNG_SEEDS = {"site-a": [0, 1, 2], "site-b": [3, 4, 5], "site-c": [6, 7, 8]}
"""Per site two training cases and one for validation."""
ENROLLED_LATE = "site-b"
"""Registers its orchestrator on the command line while its server runs."""


@dataclass
class Server:
    name: str
    data_dir: Path
    http_port: int
    token: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "KAAPANA_DATA_DIR": str(self.data_dir),
            "KAAPANA_SITE_NAME": self.name,
            "KAAPANA_DICOM_WORKERS": "1",
            "KAAPANA_DASK_WORKERS": "1",
            "KAAPANA_FEDERATION_POLL_SECONDS": "1",
        }
        command = [
            sys.executable,
            "-m",
            "kaapana",
            "serve",
            "--dicom-port",
            str(free_port()),
            "--http-port",
            str(self.http_port),
        ]
        with (self.data_dir.parent / f"{self.name}.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def ready(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def log(self) -> str:
        return (self.data_dir.parent / f"{self.name}.log").read_text(errors="replace")[-3000:]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.url}/api/v1{path}",
            timeout=30,
            headers={"Authorization": f"Bearer {self.token}"},
            **kwargs,
        )
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


def _settings(data_dir: Path, name: str) -> Settings:
    return Settings(data_dir=data_dir, site_name=name, admin_password=ADMIN_PASSWORD)


def _admin_token(platform: Platform) -> str:
    admin = platform.auth.users.get("admin")
    return platform.auth.tokens.issue(admin, name="test", can_write=True).secret


Federation = tuple[Server, dict[str, Server], dict[str, list[Path]]]


def _cli(server: Server, *args: str) -> str:
    result = CliRunner().invoke(app, ["--data-dir", str(server.data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _polling(server: Server) -> bool:
    return bool(server.api("GET", "/federation/site")["polling"])


def _load_lungs(platform: Platform, seeds: list[int]) -> None:
    target = platform.archive.target("admin", "lungs")
    for seed in seeds:
        ct, seg = lung_case(seed)
        for ds in [*ct, seg]:
            platform.archive.store_bytes(part10(ds), target, source="test")
    platform.archive.flush()


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """The orchestrator and three sites, prepared (data, exposure, policies, keys) and serving;
    site-c approves statistics by hand; site-b registers its orchestrator on the command line
    while it serves, and is polling it without a restart."""
    tmp_path = tmp_path_factory.mktemp("federation")
    orchestrator_dir = tmp_path / "central" / "data"
    with Platform(_settings(orchestrator_dir, "central")) as platform:
        secrets = {
            name: platform.federation.sites.add_participant(name).secret for name in PATIENTS
        }
        orchestrator = Server(
            "central",
            orchestrator_dir,
            free_port(),
            _admin_token(platform),
        )
    sites: dict[str, Server] = {}
    files: dict[str, list[Path]] = {}
    for index, (name, patients) in enumerate(PATIENTS.items()):
        data_dir = tmp_path / name / "data"
        files[name] = [
            path
            for number, patient in enumerate(patients)
            for path in write_patient(tmp_path / name / "dicom", patient, seed=10 * index + number)
        ]
        with Platform(_settings(data_dir, name)) as platform:
            load_dataset(platform, files[name])
            _load_lungs(platform, LUNG_SEEDS[name])
            platform.federation.policies.expose(project="admin", dataset="cohort")
            platform.federation.policies.expose(project="admin", dataset="lungs")
            platform.federation.policies.allow(
                PLAN, approval="manual" if name == "site-c" else "automatic", actor="owner"
            )
            platform.federation.policies.allow(TRAINING, approval="automatic", actor="owner")
            if name != ENROLLED_LATE:
                platform.federation.sites.add_orchestrator(
                    "central", url=orchestrator.url, secret=secrets[name]
                )
            sites[name] = Server(
                name,
                data_dir,
                free_port(),
                _admin_token(platform),
            )
    servers = [orchestrator, *sites.values()]
    for server in servers:
        server.start()
    try:
        for server in servers:
            wait_until(server.ready, 90, f"{server.name} serving")
        late = sites[ENROLLED_LATE]
        assert not _polling(late)
        _cli(
            late,
            "sites",
            "add",
            "central",
            "--role",
            "orchestrator",
            "--url",
            orchestrator.url,
            "--secret",
            secrets[ENROLLED_LATE],
        )
        wait_until(lambda: _polling(late), 30, f"{late.name} polling without a restart")
        yield orchestrator, sites, files
    finally:
        for server in servers:
            server.kill()


def _wait_run(
    orchestrator: Server,
    run_id: int,
    condition: Callable[[dict[str, Any]], bool],
    timeout: float = 60,
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def check() -> bool:
        seen.update(orchestrator.api("GET", f"/federation/runs/{run_id}"))
        return condition(seen)

    try:
        wait_until(check, timeout, f"federated run {run_id}")
    except AssertionError as exc:
        raise AssertionError(json.dumps(seen, indent=1, default=str)[-3000:]) from exc
    return seen


def _states(run: dict[str, Any], round: int = 1) -> dict[str, str]:
    return {job["site"]: job["state"] for job in run["jobs"] if job["round"] == round}


@pytest.mark.timeout(900)  # the module's servers start within it
def test_federated_training_improves_held_out_dice_and_pushes_the_model(
    federation: Federation, tmp_path: Path
) -> None:
    import torch

    torch.set_num_threads(1)
    orchestrator, sites, _files = federation
    rounds = 2
    started = orchestrator.api(
        "POST",
        "/federation/runs",
        json={
            "workflow": TRAINING,
            "dataset": "lungs",
            "rounds": rounds,
            "site_timeout": 300,
            "params": {**TINY_TRAINING, "push_model": True},
        },
    )
    done = _wait_run(orchestrator, started["id"], lambda r: r["state"] != "running", 600)
    assert done["state"] == "succeeded", json.dumps(done, default=str)[-3000:]
    result = done["result"]
    assert [r["round"] for r in result["rounds"]] == [1, 2]
    assert result["rounds"][0]["cases"] == {"site-a": 2, "site-b": 2, "site-c": 2}

    # The global model of each round segments two cases no site has, better round by round.
    run_dir = orchestrator.data_dir / "results" / "federation" / "runs" / str(done["id"])
    globals_ = [unpack_files((run_dir / f"global-{r}.json").read_bytes()) for r in (1, 2)]
    cases = held_out(tmp_path / "held-out")
    dice = [dice_of(files[MODEL_NAME], cases, tmp_path) for files in globals_]
    assert dice[-1] > max(dice[0], 0.5), dice

    # Only each site's weights and case count travelled: no DICOM, no pixel arrays, no IDs.
    uploads = sorted(run_dir.glob("round-*/*/*"))
    assert {p.name for p in uploads} == {MODEL_NAME, UPDATE_NAME} and len(uploads) == 12
    for path in uploads:
        data = path.read_bytes()
        assert not looks_like_dicom(data) and not looks_like_numpy(path.name, data)
        assert b"FT" not in data or path.name == MODEL_NAME
    model_bytes = result["model_bytes"]
    received = [sum(j["received_bytes"] for j in done["jobs"] if j["round"] == r) for r in (1, 2)]
    figures = {"held_out_dice": dice, "received_bytes": received, "model_bytes": model_bytes}
    print(json.dumps(figures))
    # Sealed binary: the three models, their case counts and a few hundred bytes of envelope.
    assert all(3 * model_bytes < r < 3 * 1.05 * model_bytes for r in received), figures

    # Registered at the orchestrator, then pushed to every site, which registered it.
    assert result["model"] == {"name": "federated-lungs", "version": 1, "project": "admin"}
    (central,) = orchestrator.api("GET", "/models")
    assert central["metrics"]["federated_run"] == done["id"] and central["run_id"] is None
    pushed = _wait_run(
        orchestrator,
        done["id"],
        lambda r: all(j["model_push"] == "registered" for j in r["jobs"] if j["round"] == 2),
    )
    for name, site in sites.items():
        assert _job(pushed, name, round=2)["model_push_detail"] == (
            "federated-lungs version 1 in project admin"
        )
        (model,) = json.loads(_cli(site, "models", "list", "--json"))
        assert (model["name"], model["project"], model["modality"]) == (
            "federated-lungs",
            "admin",
            "CT",
        )
        assert model["sha256"] == central["sha256"] and model["labels"] == central["labels"]
        assert model["metrics"] == {
            "federated_run": done["id"],
            "orchestrator": "central",
            "round": rounds,
            "sha256": central["sha256"],
            "job": _job(pushed, name, round=2)["job_id"],
        }
        (received,) = site.api("GET", "/audit", params={"action": "federation.model.receive"})
        assert received["outcome"] == "success"
    sent = orchestrator.api("GET", "/audit", params={"action": "federation.model.send"})
    assert len(sent) == 3

    # predict-segmentation at a site applies the pushed model.
    ct, _seg = lung_case(LUNG_SEEDS["site-a"][0])
    predicted = sites["site-a"].api(
        "POST",
        "/runs",
        json={
            "workflow": "predict-segmentation",
            "project": "admin",
            "series": [ct[0].SeriesInstanceUID],
            "params": {"model": "federated-lungs"},
        },
    )
    seen: dict[str, Any] = {}

    def predicted_done() -> bool:
        seen.update(sites["site-a"].api("GET", f"/runs/{predicted['id']}"))
        return seen["state"] not in ("queued", "running")

    began = time.monotonic()
    wait_until(predicted_done, 120, "predict-segmentation at site-a")
    assert seen["state"] == "succeeded", seen
    print(json.dumps({"predict_seconds": round(time.monotonic() - began, 1)}))


def test_federated_statistics_across_three_serving_sites(federation: Federation) -> None:
    orchestrator, sites, files = federation
    started = orchestrator.api(
        "POST", "/federation/runs", json={"workflow": PLAN, "dataset": "cohort"}
    )

    # site-c's data owner holds the job; the others deliver meanwhile.
    held = _wait_run(
        orchestrator,
        started["id"],
        lambda r: (
            _states(r)
            == {"site-a": "succeeded", "site-b": "succeeded", "site-c": "pending_approval"}
        ),
    )
    assert held["state"] == "running"
    runner = CliRunner()
    listed = runner.invoke(
        app,
        [
            "--data-dir",
            str(sites["site-c"].data_dir),
            "federation",
            "jobs",
            "--state",
            "pending_approval",
            "--json",
        ],
    )
    (pending,) = json.loads(listed.output)
    assert (pending["requester"], pending["workflow"], pending["dataset"], pending["outputs"]) == (
        "admin",
        PLAN,
        "cohort",
        ["stats.json"],
    )
    approved = runner.invoke(
        app,
        ["--data-dir", str(sites["site-c"].data_dir), "federation", "approve", pending["job_id"]],
    )
    assert approved.exit_code == 0, approved.output
    done = _wait_run(orchestrator, started["id"], lambda r: r["state"] != "running")
    assert done["state"] == "succeeded", done
    (central,) = sites["site-a"].api("GET", "/federation/sites")
    assert central["role"] == "orchestrator" and central["last_seen_at"] is not None

    # Pooled equals the statistics of the union; each site's equals its own data's.
    union = [path for site_files in files.values() for path in site_files]
    assert_statistics_equal(done["result"]["pooled"], direct_statistics(union))
    for name, site_files in files.items():
        assert_statistics_equal(done["result"]["sites"][name], direct_statistics(site_files))
    assert done["result"]["pooled"]["patients"] == 4

    # What the orchestrator received: sealed bytes, opened into statistics, never images.
    received = sorted(
        (orchestrator.data_dir / "results" / "federation" / "runs").rglob("*/stats.json")
    )
    assert len(received) == 3 and all(job["received_bytes"] > 0 for job in done["jobs"])
    for path in received:
        data = path.read_bytes()
        assert not looks_like_dicom(data) and not looks_like_numpy(path.name, data)
        assert not any(patient.encode() in data for p in PATIENTS.values() for patient in p)
    upload_events = orchestrator.api(
        "GET", "/audit", params={"action": "federation.upload.receive"}
    )
    assert {f"federated-job:{j['job_id']}" for j in done["jobs"]} <= {
        e["target"] for e in upload_events
    }
    executed = sites["site-a"].api("GET", "/audit", params={"action": "federation.job.execute"})
    assert executed[0]["target"] == f"federated-job:{_job(done, 'site-a')['job_id']}"

    # Logs on request: site-a's policy does not share them, and says so.
    logged = _job(done, "site-a")
    orchestrator.api("POST", f"/federation/runs/{started['id']}/jobs/{logged['job_id']}/logs")
    answered = _wait_run(orchestrator, started["id"], lambda r: bool(_job(r, "site-a")["logs"]))
    assert "does not share the logs" in _job(answered, "site-a")["logs"]

    # A wrong token is refused and audited.
    wrong = httpx.post(
        f"{orchestrator.url}/api/v1/federation/protocol/poll",
        json={},
        headers={"Authorization": "Bearer kpft_guessed"},
    )
    assert wrong.status_code == 401
    assert (
        orchestrator.api("GET", "/audit", params={"action": "federation.auth"})[0]["outcome"]
        == "failure"
    )

    # site-b's pinned hash no longer matches its installed workflow: it refuses; with
    # min_sites=2 the round is pooled from the two others.
    policy = {"approval": "automatic", "definition_hash": "0" * 64}
    sites["site-b"].api("PUT", f"/federation/policies/{PLAN}", json=policy)
    sites["site-c"].api("PUT", f"/federation/policies/{PLAN}", json={"approval": "automatic"})
    second = orchestrator.api(
        "POST", "/federation/runs", json={"workflow": PLAN, "dataset": "cohort", "min_sites": 2}
    )
    second = _wait_run(orchestrator, second["id"], lambda r: r["state"] != "running")
    assert second["state"] == "succeeded", second
    refused = _job(second, "site-b")
    assert refused["state"] == "refused" and "changed here" in refused["detail"]
    assert second["history"] == [
        {"round": 1, "sites": ["site-a", "site-c"], "missing": {"site-b": "refused"}}
    ]
    assert_statistics_equal(
        second["result"]["pooled"], direct_statistics(files["site-a"] + files["site-c"])
    )

    # site-c goes offline, the orchestrator is killed mid-round and restarted: the run resumes
    # at the unfinished round, and each round goes on without site-c (min_sites=2).
    sites["site-b"].api("PUT", f"/federation/policies/{PLAN}", json={"approval": "automatic"})
    sites["site-c"].kill()
    third = orchestrator.api(
        "POST",
        "/federation/runs",
        json={
            "workflow": PLAN,
            "dataset": "cohort",
            "rounds": 2,
            "min_sites": 2,
            # long enough for the sites of a loaded machine (four servers, each with its own
            # cluster, beside the suite's other worker) to answer
            "site_timeout": 30,
        },
    )
    _wait_run(orchestrator, third["id"], lambda r: any(j["round"] == 2 for j in r["jobs"]))
    orchestrator.kill()
    orchestrator.start()
    wait_until(orchestrator.ready, 90, "the orchestrator again")
    third = _wait_run(orchestrator, third["id"], lambda r: r["state"] != "running", timeout=150)
    assert third["state"] == "succeeded", json.dumps(third, default=str)[-3000:]
    assert [h["round"] for h in third["history"]] == [1, 2]
    assert all(h["missing"] == {"site-c": "timed_out"} for h in third["history"])
    assert sorted((j["round"], j["site"]) for j in third["jobs"]) == [
        (r, s) for r in (1, 2) for s in ("site-a", "site-b", "site-c")
    ]
    assert third["result"]["round"] == 2

    # The orchestrator removed on site-a's command line: its running server stops polling.
    assert _polling(sites["site-a"])
    _cli(sites["site-a"], "sites", "remove", "central")
    wait_until(lambda: not _polling(sites["site-a"]), 30, "site-a no longer polling")


def _job(run: dict[str, Any], site: str, round: int = 1) -> dict[str, Any]:
    return next(j for j in run["jobs"] if j["site"] == site and j["round"] == round)
