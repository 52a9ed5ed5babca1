"""The participant's background thread: poll the orchestrator, decide, run, upload, report.

Every pass first moves local work on (starts approved jobs, notices finished runs, uploads
their checked and sealed outputs, reports states the orchestrator has not heard), then polls;
the poll waits up to ``federation_poll_seconds`` for a job (less while local runs are active,
so their results leave promptly). Failed calls are retried on the next pass; nothing is lost
while the orchestrator is away, since every state is in the database first.
"""

import logging
import threading

import httpx

from kaapana.errors import KaapanaError
from kaapana.federation.client import OrchestratorClient, OrchestratorError
from kaapana.federation.envelope import open_sealed, seal
from kaapana.federation.participant import SiteJobs
from kaapana.federation.policies import Policies
from kaapana.federation.pushed_models import PushedModels
from kaapana.federation.sites import Sites
from kaapana.federation.states import REPORTABLE_JOB_STATES, JobStateValues, ModelPushValues

log = logging.getLogger(__name__)
ACTIVE_WAIT_SECONDS = 0.5


class Poller:
    def __init__(
        self,
        *,
        site_name: str,
        sites: Sites,
        policies: Policies,
        jobs: SiteJobs,
        models: PushedModels,
        poll_seconds: float,
    ) -> None:
        self._site_name = site_name
        self._sites = sites
        self._policies = policies
        self._jobs = jobs
        self._models = models
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._peers_changed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="federation-poller", daemon=True)
        self._client: OrchestratorClient | None = None
        self._peer: tuple[object, ...] | None = None

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def connected(self) -> bool:
        """Whether the last pass found an orchestrator to poll."""
        return self._client is not None

    def peers_changed(self) -> None:
        """An orchestrator was registered or removed in this process: look now, not after the
        pause (another process's change is seen on the next pass)."""
        self._peers_changed.set()

    def stop(self) -> None:
        self._stop.set()
        self._peers_changed.set()
        if self._thread.is_alive():
            self._thread.join(self._poll_seconds + 35)
        self._disconnect()

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._peer = None

    def _connect(self) -> OrchestratorClient | None:
        """The client of the orchestrator registered now: the peers table and the secret are
        read on every pass, so one added, removed or re-enrolled by ``kaapana sites`` (another
        process) is polled, dropped or re-keyed without a restart."""
        orchestrator = self._sites.orchestrator()
        if orchestrator is None:
            self._disconnect()
            return None
        secret = self._sites.orchestrator_secret(orchestrator.name)
        peer = (
            orchestrator.name,
            orchestrator.url,
            orchestrator.verify_tls,
            orchestrator.pinned_sha256,
            secret,
        )
        if self._client is None or self._peer != peer:
            self._disconnect()
            self._client = OrchestratorClient(orchestrator, secret, timeout=self._poll_seconds + 30)
            self._peer = peer
        return self._client

    def _pause(self) -> None:
        self._peers_changed.wait(self._poll_seconds)
        self._peers_changed.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                client = self._connect()
                if client is None:
                    self._pause()
                    continue
                self.step(client)
            except (httpx.HTTPError, KaapanaError, OSError) as exc:
                log.warning("federation: %s", exc)
                self._pause()
            except Exception:  # the thread must outlive any one bad pass
                log.exception("federation poller pass failed")
                self._pause()

    def step(self, client: OrchestratorClient) -> None:
        """One pass: local work first, then one (long) poll and what it brought."""
        busy = self._work(client)
        active = self._jobs.active()
        answer = client.poll(
            site=self._site_name,
            datasets=[e.public() for e in self._policies.exposures()],
            active=[j.job_id for j in active],
            wait=0 if busy else (ACTIVE_WAIT_SECONDS if active else self._poll_seconds),
        )
        self._sites.mark_seen(client.name)
        for offer in answer.get("jobs", []):
            self._jobs.receive(offer, orchestrator=client.name)
        for job_id in answer.get("cancel", []):
            self._jobs.cancel(
                job_id, actor=f"site:{client.name}", reason="canceled by the orchestrator"
            )
        for job_id in answer.get("logs", []):
            logs = self._jobs.logs(job_id).encode()
            client.upload_logs(
                job_id, seal(client.fernet_key, job_id=job_id, kind="logs", files={"log.txt": logs})
            )
        for job_id in answer.get("models", []):
            self._take_model(client, job_id)
        if answer.get("jobs") or answer.get("cancel"):
            self._work(client)

    def _take_model(self, client: OrchestratorClient, job_id: str) -> None:
        """Register the final model offered with one of this site's jobs, or say why not."""
        sealed = client.model(job_id)
        try:
            model = self._models.register(
                job_id, sealed, orchestrator=client.name, key=client.fernet_key
            )
        except KaapanaError as exc:
            client.report_model(job_id, ModelPushValues.refused, exc.detail)
            return
        client.report_model(
            job_id,
            ModelPushValues.registered,
            f"{model.name} version {model.version} in project {model.project}",
        )

    def _work(self, client: OrchestratorClient) -> bool:
        """Move every local job on; True if something changed that the next poll should not
        wait for."""
        changed = False
        for job in self._jobs.active():
            if job.state == JobStateValues.approved:
                files = {}
                if job.has_input:
                    sealed = client.input(job.job_id)
                    files = open_sealed(
                        client.fernet_key, sealed, job_id=job.job_id, kind="input", max_age=None
                    ).files
                self._jobs.start(job.job_id, files)
                changed = True
            elif job.state == JobStateValues.running:
                changed |= self._jobs.check_run(job.job_id).state != JobStateValues.running
        for job in self._jobs.active():
            if job.state == JobStateValues.uploading:
                self._upload(client, job.job_id)
                changed = True
        for job in self._jobs.unreported():
            if job.state in REPORTABLE_JOB_STATES:
                client.report(job.job_id, job.state, job.reason)
                self._jobs.mark_reported(job.job_id, job.state)
        return changed

    def _upload(self, client: OrchestratorClient, job_id: str) -> None:
        try:
            files = self._jobs.collect(job_id)
        except KaapanaError as exc:
            self._jobs.fail(job_id, f"outputs refused at the site: {exc.detail}")
            return
        sealed = seal(client.fernet_key, job_id=job_id, kind="outputs", files=files)
        try:
            client.upload(job_id, sealed)
        except OrchestratorError as exc:
            if exc.remote_status < 500:
                self._jobs.fail(job_id, exc.detail)
                return
            raise
        self._jobs.uploaded(job_id, len(sealed))


__all__ = ["Poller"]
