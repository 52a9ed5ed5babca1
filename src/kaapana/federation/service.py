"""``Federation``: the services of one site, orchestrator and participant alike, wired into the
workflow engine (the ``federated-round`` gate and the ``federation.commit-round`` action that
drive federated runs as engine runs), and the poller ``kaapana serve`` runs, which polls
whichever orchestrator is registered, if any."""

import threading

from sqlalchemy import Engine

from kaapana.auth.audit import Audit
from kaapana.auth.projects import Projects
from kaapana.catalog import Datasets
from kaapana.config import Settings
from kaapana.federation.aggregation import Plans
from kaapana.federation.central import COMMIT_ACTION, ROUND_GATE
from kaapana.federation.hub import Hub
from kaapana.federation.keys import federation_secrets_dir
from kaapana.federation.participant import SiteJobs
from kaapana.federation.policies import Policies
from kaapana.federation.poller import Poller
from kaapana.federation.pushed_models import PushedModels
from kaapana.federation.radiomics import RADIOMICS_PLAN
from kaapana.federation.runs import FederatedRuns
from kaapana.federation.sites import Sites
from kaapana.federation.statistics import STATISTICS_PLAN
from kaapana.federation.training import training_plan
from kaapana.models.registry import ModelRegistry
from kaapana.storage import ObjectStore
from kaapana.workflows import Engine as WorkflowEngine


class Federation:
    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        workflows: WorkflowEngine,
        projects: Projects,
        datasets: Datasets,
        results: ObjectStore,
        audit: Audit,
        models: ModelRegistry,
    ) -> None:
        self.settings = settings
        self.site_name = settings.resolved_site_name
        self.sites = Sites(engine=engine, secrets_dir=federation_secrets_dir(settings.data_dir))
        self.policies = Policies(
            engine=engine,
            registry=workflows.registry,
            projects=projects,
            datasets=datasets,
            default_max_output_bytes=settings.federation_max_output_bytes,
        )
        self._workflows = workflows
        self.plans = Plans(workflows.registry)
        self.plans.add(STATISTICS_PLAN)
        self.plans.add(RADIOMICS_PLAN)
        self.plans.add(training_plan(models=models, projects=projects, results=results))
        self.hub = Hub(
            site_name=self.site_name,
            engine=engine,
            sites=self.sites,
            results=results,
            registry=workflows.registry,
            audit=audit,
            max_output_bytes=settings.federation_max_output_bytes,
            max_upload_age=settings.federation_upload_max_age_seconds,
            on_job_change=workflows.poke_gates,
        )
        self.runs = FederatedRuns(
            engine=engine,
            plans=self.plans,
            workflows=workflows,
            projects=projects,
            sites=self.sites,
            hub=self.hub,
            results=results,
            audit=audit,
        )
        self.jobs = SiteJobs(
            engine=engine,
            policies=self.policies,
            workflows=workflows,
            audit=audit,
            inputs_dir=settings.resolved_work_dir / "federation",
        )
        self.pushed_models = PushedModels(
            engine=engine, policies=self.policies, models=models, results=results, audit=audit
        )
        workflows.gates.register(ROUND_GATE, self.runs)
        workflows.actions.register(COMMIT_ACTION, self.runs.commit_round)
        self._lock = threading.Lock()
        self._serving = False
        self._poller: Poller | None = None

    def serve(self) -> None:
        """Drive federated runs (the workflow engine schedules their central runs here, unless
        another process does) and start the poller (``kaapana serve``)."""
        with self._lock:
            if not self._serving:
                self._serving = True
                self.runs.resume()
                self._workflows.start()
            if self._poller is None:
                self._poller = Poller(
                    site_name=self.site_name,
                    sites=self.sites,
                    policies=self.policies,
                    jobs=self.jobs,
                    models=self.pushed_models,
                    poll_seconds=self.settings.federation_poll_seconds,
                )
                self._poller.start()

    def peers_changed(self) -> None:
        """An orchestrator was added or removed here: the poller looks at once."""
        if self._poller is not None:
            self._poller.peers_changed()

    @property
    def polling(self) -> bool:
        return self._poller is not None and self._poller.running and self._poller.connected

    def close(self) -> None:
        with self._lock:
            poller, self._poller = self._poller, None
        if poller is not None:
            poller.stop()


__all__ = ["Federation"]
