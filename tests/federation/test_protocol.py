"""The protocol's pieces in one process: output checks, sealed payloads, statistics pooling,
the participant's decisions, and the orchestrator's HTTP end against a participant's calls."""

import hashlib
import io
import os
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaapana.api import create_app
from kaapana.config import Settings
from kaapana.db.engine import session_factory
from kaapana.db.models import FederationPeer
from kaapana.errors import Conflict, InvalidInput
from kaapana.federation.client import CertificateMismatch, OrchestratorClient
from kaapana.federation.envelope import TamperedPayload, open_sealed, seal
from kaapana.federation.keys import derive_keys, federation_secrets_dir
from kaapana.federation.outputs import OutputRefused, check_outputs
from kaapana.federation.radiomics import pool_radiomics, summarize
from kaapana.federation.sites import SiteView
from kaapana.federation.states import PeerRoleValues
from kaapana.federation.statistics import STATS_NAME, pool
from kaapana.platform import Platform
from kaapana.testing import ct_segmentation, ct_series
from tests.federation.cohort import (
    SLICES,
    assert_statistics_equal,
    bare_dicom,
    direct_statistics,
    load_dataset,
    write_patient,
)
from tests.helpers import free_port, part10, self_signed_certificate, wait_until

KEY = derive_keys("kpf_" + "a" * 43).fernet_key


def _check(files: dict[str, bytes], **kwargs: object) -> None:
    options: dict[str, object] = {
        "declared": ["stats.json", "weights.npz"],
        "max_bytes": 1000,
        "allow_pixel_data": False,
    }
    options.update(kwargs)
    check_outputs(files, **options)  # type: ignore[arg-type]


def test_output_policy_lets_declared_statistics_leave_and_nothing_else() -> None:
    _check({"stats.json": b'{"series": 3}'})
    with pytest.raises(OutputRefused, match="is DICOM"):
        _check({"stats.json": part10(ct_series(rows=16, columns=16, slices=1)[0])}, max_bytes=10**6)
    with pytest.raises(OutputRefused, match="is DICOM"):
        _check({"stats.json": bare_dicom()}, max_bytes=10**6)
    array = io.BytesIO()
    np.save(array, np.zeros((4, 4), dtype=np.int16))
    with pytest.raises(OutputRefused, match="NumPy"):
        _check({"stats.json": array.getvalue()})
    archive = io.BytesIO()
    np.savez(archive, pixels=np.zeros((4, 4)))
    with pytest.raises(OutputRefused, match="NumPy"):
        _check({"weights.npz": archive.getvalue()}, max_bytes=10**6)
    _check({"weights.npz": archive.getvalue()}, max_bytes=10**6, allow_pixel_data=True)
    with pytest.raises(OutputRefused, match="not a declared federated output"):
        _check({"series.csv": b"uid\n1.2.3"})
    with pytest.raises(OutputRefused, match="limit is 10 bytes"):
        _check({"stats.json": b'{"series": 3}'}, max_bytes=10)


def test_sealed_payloads_reject_tampering_other_jobs_and_old_ones() -> None:
    sealed = seal(KEY, job_id="j1", kind="outputs", files={STATS_NAME: b"{}"})
    assert open_sealed(KEY, sealed, job_id="j1", kind="outputs", max_age=60).files == {
        STATS_NAME: b"{}"
    }
    secret_looking = seal(KEY, job_id="job.one", kind="outputs", files={"a": b'{"patients": 7}'})
    # Encrypted, not only signed: neither the job id nor the JSON shows.
    assert b"job.one" not in secret_looking and b'"patients"' not in secret_looking
    middle = len(sealed) // 2
    tampered = (
        sealed[:middle]
        + (b"A" if sealed[middle : middle + 1] != b"A" else b"B")
        + sealed[middle + 1 :]
    )
    with pytest.raises(TamperedPayload):
        open_sealed(KEY, tampered, job_id="j1", kind="outputs", max_age=60)
    with pytest.raises(TamperedPayload):
        open_sealed(
            derive_keys("kpf_" + "b" * 43).fernet_key,
            sealed,
            job_id="j1",
            kind="outputs",
            max_age=60,
        )
    with pytest.raises(InvalidInput, match="sealed for job 'j1'"):
        open_sealed(KEY, sealed, job_id="j2", kind="outputs", max_age=60)
    with pytest.raises(InvalidInput, match="expected 'logs'"):
        open_sealed(KEY, sealed, job_id="j1", kind="logs", max_age=60)
    with pytest.raises(InvalidInput, match="at most"):
        open_sealed(KEY, sealed, job_id="j1", kind="outputs", max_age=-61)
    # Binary on the wire: a model file travels at its size plus a few hundred bytes.
    model = bytes(range(256)) * 400
    wire = seal(KEY, job_id="j1", kind="outputs", files={"model.pt": model, STATS_NAME: b"{}"})
    assert len(model) < len(wire) < len(model) + 300
    opened = open_sealed(KEY, wire, job_id="j1", kind="outputs", max_age=60)
    assert opened.files == {"model.pt": model, STATS_NAME: b"{}"}
    with pytest.raises(TamperedPayload):
        open_sealed(KEY, wire[:-1], job_id="j1", kind="outputs", max_age=60)


def test_pooled_statistics_equal_the_statistics_of_the_union(tmp_path: Path) -> None:
    parts = [write_patient(tmp_path, f"P{index}", seed=index) for index in range(3)]
    union = direct_statistics([path for files in parts for path in files])
    pooled = pool([direct_statistics(parts[0] + parts[1]), direct_statistics(parts[2])])
    assert union["patients"] == 3 and union["modality"] == {"CT": 3, "SEG": 3}
    assert set(union["organ_volume_ml"]) == {"body", "bones", "liver", "lungs"}
    assert union["organ_volume_ml"]["body"]["count"] == 3
    assert_statistics_equal(pooled, union)


@pytest.fixture
def orchestrator(make_settings: Callable[..., Settings]) -> Iterator[Platform]:
    with Platform(make_settings(site_name="central", dask_workers=1)) as platform:
        yield platform


def test_tokens_are_hashed_at_rest_and_keys_readable_by_the_owner_only(
    orchestrator: Platform,
) -> None:
    enrolled = orchestrator.federation.sites.add_participant("site-a")
    keys = derive_keys(enrolled.secret)
    with session_factory(orchestrator.engine)() as session:
        peer = session.scalar(select(FederationPeer).where(FederationPeer.name == "site-a"))
    assert peer is not None and peer.token_hash == keys.token_hash
    folder = federation_secrets_dir(orchestrator.settings.data_dir)
    stored = b"".join(p.read_bytes() for p in folder.iterdir())
    assert keys.token.encode() not in stored and enrolled.secret.encode() not in stored
    assert stat.S_IMODE(os.stat(folder / "site-a.key").st_mode) == 0o600
    assert orchestrator.federation.sites.authenticate(keys.token) == "site-a"
    with pytest.raises(InvalidInput, match="enrolment secret"):
        orchestrator.federation.sites.add_orchestrator("x", url="https://o", secret="guess")


def _failures(platform: Platform, action: str) -> list[dict[str, object]]:
    return [
        {"target": e.target, **e.detail}
        for e in platform.auth.audit.query(action=action)
        if e.outcome == "failure"
    ]


def test_orchestrator_rejects_wrong_tokens_refused_outputs_replays_and_tampering(
    orchestrator: Platform,
) -> None:
    federation = orchestrator.federation
    keys = derive_keys(federation.sites.add_participant("site-a").secret)
    run = federation.runs.start("federated-statistics", dataset="cohort", actor="admin")
    federation.serve()  # the engine's scheduler asks the round's gate: round 1 is dispatched
    wait_until(lambda: bool(federation.runs.get(run.id).jobs), 30, "round 1 dispatched")
    with TestClient(create_app(orchestrator.settings, platform=orchestrator)) as client:
        base = "/api/v1/federation/protocol"
        wrong = client.post(f"{base}/poll", json={}, headers={"Authorization": "Bearer kpft_no"})
        assert wrong.status_code == 401
        assert _failures(orchestrator, "federation.auth")[0]["reason"] == "unknown federation token"
        headers = {"Authorization": f"Bearer {keys.token}"}
        polled = client.post(
            f"{base}/poll",
            json={
                "wait": 1,
                "datasets": [{"name": "cohort", "series": 4, "patients": 2, "PatientID": "leak"}],
            },
            headers=headers,
        )
        assert polled.status_code == 200, polled.text
        (offer,) = polled.json()["jobs"]
        assert offer["outputs"] == [STATS_NAME] and offer["workflow"] == "federated-statistics"
        assert federation.sites.get("site-a").datasets == [
            {"name": "cohort", "patients": 2, "series": 4}
        ]
        job = offer["job_id"]
        url = f"{base}/jobs/{job}/outputs"
        dicom = seal(keys.fernet_key, job_id=job, kind="outputs", files={STATS_NAME: bare_dicom()})
        assert client.post(url, content=dicom, headers=headers).json()["error"] == "output_refused"
        good = seal(keys.fernet_key, job_id=job, kind="outputs", files={STATS_NAME: b"{}"})
        tampered = good[:-10] + (b"A" if good[-10:-9] != b"A" else b"B") + good[-9:]
        refused = client.post(url, content=tampered, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"] == "tampered_payload"
        accepted = client.post(url, content=good, headers=headers)
        assert accepted.status_code == 200, accepted.text
        replayed = client.post(url, content=good, headers=headers)
        assert replayed.status_code == 409 and replayed.json()["error"] == "replayed_payload"
        # The job has ended here: a site still working on it is told to stop.
        again = client.post(f"{base}/poll", json={"active": [job]}, headers=headers)
        assert again.json() == {"jobs": [], "cancel": [job], "logs": [], "models": []}
        # Another site's token: the upload does not even open with that site's key.
        intruder = derive_keys(federation.sites.add_participant("site-b").secret).token
        other = client.post(url, content=good, headers={"Authorization": f"Bearer {intruder}"})
        assert other.json()["error"] == "tampered_payload"
    failures = _failures(orchestrator, "federation.upload.receive")
    assert [f["error"] for f in failures] == [
        "tampered_payload",
        "replayed_payload",
        "tampered_payload",
        "output_refused",
    ]
    assert {f["target"] for f in failures} == {f"federated-job:{job}"}
    assert federation.runs.get(run.id).jobs[0].state == "succeeded"


def test_participant_refuses_unapproved_or_changed_workflows_and_holds_manual_ones(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with Platform(make_settings(site_name="site-a")) as site:
        load_dataset(site, write_patient(tmp_path, "P1", seed=1))
        federation = site.federation
        installed = site.workflows.registry.get("federated-statistics").definition_hash

        def offer(job: str, **changes: object) -> str:
            document = {
                "job_id": job,
                "workflow": "federated-statistics",
                "definition_hash": installed,
                "dataset": "cohort",
                "outputs": [STATS_NAME],
                "requester": "dr-who",
            }
            document.update(changes)
            view = federation.jobs.receive(document, orchestrator="central")
            assert view is not None
            return f"{view.state}: {view.reason}"

        assert offer("j1") == "refused: workflow 'federated-statistics' is not allowed at this site"
        federation.policies.allow("federated-statistics", approval="manual", actor="owner")
        assert offer("j2").startswith("refused: dataset 'cohort' is not exposed")
        exposed = federation.policies.expose(project="admin", dataset="cohort")
        assert (exposed.patients, exposed.series) == (1, 2)
        assert offer("j3") == "pending_approval: "
        assert federation.jobs.receive({"job_id": "j3"}, orchestrator="central") is None
        assert offer("j4", definition_hash="f" * 64).startswith(
            "refused: the orchestrator asks for workflow"
        )
        assert offer("j5", outputs=[STATS_NAME, "series.csv"]).startswith(
            "refused: the job would take out ['series.csv']"
        )
        federation.policies.allow(
            "federated-statistics", approval="automatic", actor="owner", definition_hash="0" * 64
        )
        assert "changed here" in offer("j6", definition_hash="0" * 64)
        (pending,) = federation.jobs.list(state="pending_approval")
        assert (pending.requester, pending.outputs, pending.dataset) == (
            "dr-who",
            [STATS_NAME],
            "cohort",
        )
        assert federation.jobs.deny("j3", actor="owner").state == "denied"
        with pytest.raises(Conflict, match="not pending approval"):
            federation.jobs.approve("j3", actor="owner")
        federation.policies.allow("federated-statistics", approval="manual", actor="owner")
        assert offer("j7") == "pending_approval: "
        assert federation.jobs.cancel("j7", actor="owner").state == "canceled"
        with pytest.raises(Conflict, match="canceled already"):
            federation.jobs.cancel("j7", actor="owner")
        actions = [e.action for e in site.auth.audit.query() if e.target == "federated-job:j3"]
        assert actions == ["federation.job.deny", "federation.job.receive"]


def test_the_orchestrators_certificate_is_verified_or_pinned(
    orchestrator: Platform, tmp_path: Path
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    secret = orchestrator.federation.sites.add_participant("site-a").secret
    port = free_port()
    config = uvicorn.Config(
        create_app(orchestrator.settings, platform=orchestrator),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, "the TLS server")
        der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)
        pin = hashlib.sha256(der).hexdigest()

        def poll(*, verify_tls: bool, pinned_sha256: str = "") -> dict[str, object]:
            site = SiteView(
                name="central",
                role=PeerRoleValues.orchestrator,
                url=f"https://127.0.0.1:{port}",
                verify_tls=verify_tls,
                pinned_sha256=pinned_sha256,
                datasets=[],
                last_seen_at=None,
                created_at=datetime.now(),
            )
            with OrchestratorClient(site, secret, timeout=10) as client:
                return client.poll(site="site-a", datasets=[], active=[], wait=0)

        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            poll(verify_tls=True)  # self-signed: not trusted by default
        assert poll(verify_tls=False, pinned_sha256=pin) == {
            "jobs": [],
            "cancel": [],
            "logs": [],
            "models": [],
        }
        with pytest.raises(CertificateMismatch, match="not the pinned"):
            poll(verify_tls=False, pinned_sha256="0" * 64)
    finally:
        server.should_exit = True
        thread.join(10)


def test_pooled_radiomics_equal_the_radiomics_of_the_union() -> None:
    from kaapana.federation.radiomics import cases_of
    from kaapana.operators.radiomics import segment_features
    from kaapana.workflows.builtin.federated_radiomics import PARAMETERS

    cases = []
    for index in range(3):
        ct = ct_series(rows=32, columns=32, slices=SLICES, seed=index, patient_id=f"R{index}")
        features = segment_features(ct, ct_segmentation(ct, seed=index), PARAMETERS)
        cases.append(cases_of(features))
    union = summarize(case for site in cases for case in site)
    pooled = pool_radiomics([summarize(cases[0] + cases[1]), summarize(cases[2])])
    assert set(union["labels"]) == {"body", "bones", "liver", "lungs"}
    liver = union["labels"]["liver"]
    volume = liver["original_shape_VoxelVolume"]
    assert volume["count"] == 3 and liver["original_firstorder_Mean"]["min"] > -200
    assert volume["quartiles"][0] <= volume["quartiles"][2]
    assert set(liver) == {
        "original_firstorder_Maximum",
        "original_firstorder_Mean",
        "original_firstorder_Median",
        "original_firstorder_Minimum",
        "original_firstorder_Variance",
        "original_shape_Sphericity",
        "original_shape_VoxelVolume",
    }
    assert pooled.keys() == union.keys()
    for label, features in union["labels"].items():
        for name, summary in features.items():
            other = pooled["labels"][label][name]
            assert (other["count"], other["histogram"], other["quartiles"]) == (
                summary["count"],
                summary["histogram"],
                summary["quartiles"],
            ), (label, name)
            for key in ("sum", "min", "max", "mean", "sd"):
                assert other[key] == pytest.approx(summary[key], abs=1e-4), (label, name, key)
