"""One typed context per page: what its template may use, and nothing else.

A page is a frozen dataclass naming its ``template`` and its ES ``module`` (under
``static/pages/``); ``client_data()`` is what the module receives as JSON. Templates read
``page.<field>`` only, so a renamed field fails in tests, not silently in a browser.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from markupsafe import Markup

from kaapana.api.routes.system import SystemStatus
from kaapana.archive.browse import StudySummary
from kaapana.archive.counts import ArchiveCounts
from kaapana.auth.audit import AuditRecord
from kaapana.auth.users import MembershipInfo
from kaapana.catalog.datasets import DatasetInfo, DatasetMember
from kaapana.catalog.series_view import SeriesView
from kaapana.federation.participant import SiteJobView
from kaapana.federation.policies import ExposureView, PolicyView
from kaapana.federation.runs import FederatedRunView
from kaapana.federation.sites import SiteView
from kaapana.workflows.views import LoadErrorView, RunDetailView, RunView, WorkflowView


@dataclass(frozen=True, slots=True)
class ProjectLink:
    name: str
    url: str
    current: bool


@dataclass(frozen=True, slots=True)
class Layout:
    """The frame around every signed-in page: who, which project, where to switch to."""

    username: str
    is_admin: bool
    project: str | None
    projects: list[ProjectLink]
    section: str  # the current place in the navigation: "home", "studies", "admin/users", ...
    ohif: bool = False  # whether the OHIF Viewer is installed: pages then link studies to it


@dataclass(frozen=True, slots=True)
class Page:
    template: ClassVar[str]
    module: ClassVar[str]
    title: ClassVar[str]
    layout: Layout | None

    def client_data(self) -> dict[str, Any]:
        return {"project": self.layout.project if self.layout else None}


@dataclass(frozen=True, slots=True)
class ErrorPage(Page):
    template = "error.html"
    module = "layout"
    title = "Error"
    status: int
    message: str


@dataclass(frozen=True, slots=True)
class LoginPage(Page):
    template = "login.html"
    module = "login"
    title = "Log in"
    next_url: str
    oidc_enabled: bool

    def client_data(self) -> dict[str, Any]:
        return {"next": self.next_url}


@dataclass(frozen=True, slots=True)
class NoProjectPage(Page):
    template = "no_project.html"
    module = "layout"
    title = "No project"


@dataclass(frozen=True, slots=True)
class HomePage(Page):
    template = "home.html"
    module = "layout"
    title = "Home"
    counts: ArchiveCounts
    recent: list[StudySummary]
    active_runs: list[RunView] = field(default_factory=list)  # queued and running, newest first
    pending_approvals: int = 0  # federated jobs on this project's exposed datasets


@dataclass(frozen=True, slots=True)
class PageLinks:
    """Previous/next links of a paged list (None at either end)."""

    first: int
    last: int
    total: int
    previous_url: str | None
    next_url: str | None


@dataclass(frozen=True, slots=True)
class StudiesPage(Page):
    template = "studies.html"
    module = "studies"
    title = "Studies"
    studies: list[StudySummary]
    paging: PageLinks


@dataclass(frozen=True, slots=True)
class ProjectRow:
    name: str
    ae_title: str | None
    description: str


@dataclass(frozen=True, slots=True)
class ProjectsAdminPage(Page):
    template = "admin/projects.html"
    module = "admin_projects"
    title = "Projects"
    rows: list[ProjectRow]


@dataclass(frozen=True, slots=True)
class ProjectAdminPage(Page):
    template = "admin/project.html"
    module = "admin_project"
    title = "Project"
    project: ProjectRow
    members: list[MembershipInfo]
    usernames: list[str]
    roles: list[str]

    def client_data(self) -> dict[str, Any]:
        return {"project": self.project.name}


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    display_name: str
    is_admin: bool
    is_active: bool
    oidc: bool
    memberships: list[MembershipInfo]


@dataclass(frozen=True, slots=True)
class UsersAdminPage(Page):
    template = "admin/users.html"
    module = "admin_users"
    title = "Users"
    rows: list[UserRow]
    projects: list[str]
    roles: list[str]


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    name: str
    prefix: str
    projects: str
    can_write: bool
    expires_at: str
    last_used_at: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class TokensPage(Page):
    template = "tokens.html"
    module = "tokens"
    title = "API tokens"
    rows: list[TokenRow]
    projects: list[str]


@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    ae_title: str
    host: str
    port: int
    description: str


@dataclass(frozen=True, slots=True)
class NodesAdminPage(Page):
    template = "admin/nodes.html"
    module = "admin_nodes"
    title = "DICOM nodes"
    rows: list[NodeRow]


@dataclass(frozen=True, slots=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    project: str = ""
    since: str = ""
    until: str = ""


@dataclass(frozen=True, slots=True)
class AuditPage(Page):
    template = "admin/audit.html"
    module = "layout"
    title = "Audit log"
    filters: AuditFilters
    events: list[AuditRecord]
    older_url: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SystemPage(Page):
    template = "admin/system.html"
    module = "layout"
    title = "System"
    status: SystemStatus


@dataclass(frozen=True, slots=True)
class GalleryPage(Page):
    """The series of a project as cards; the script searches, filters, selects and tags."""

    template = "gallery.html"
    module = "gallery"
    title = "Gallery"
    can_write: bool
    can_delete: bool
    datasets: Sequence[str]
    workflows: list[str]  # names, for "Run a workflow" on the selection

    def client_data(self) -> dict[str, Any]:
        return {
            "project": self.layout.project if self.layout else None,
            "canWrite": self.can_write,
            "canDelete": self.can_delete,
            "datasets": self.datasets,
            "ohif": bool(self.layout and self.layout.ohif),
        }


@dataclass(frozen=True, slots=True)
class DashboardPage(Page):
    """Counts and charts of a project's series, drawn by the script from ``/api/v1/facets``."""

    template = "dashboard.html"
    module = "dashboard"
    title = "Dashboard"


@dataclass(frozen=True, slots=True)
class DatasetsPage(Page):
    template = "datasets.html"
    module = "layout"
    title = "Datasets"
    rows: list[DatasetInfo]


@dataclass(frozen=True, slots=True)
class DatasetPage(Page):
    template = "dataset.html"
    module = "dataset"
    title = "Dataset"
    dataset: DatasetInfo
    members: list[DatasetMember]
    paging: PageLinks
    can_write: bool

    def client_data(self) -> dict[str, Any]:
        return {"project": self.dataset.project, "dataset": self.dataset.name}


@dataclass(frozen=True, slots=True)
class WorkflowsPage(Page):
    template = "workflows.html"
    module = "layout"
    title = "Workflows"
    workflows: list[WorkflowView]
    load_errors: list[LoadErrorView]  # shown to administrators only


@dataclass(frozen=True, slots=True)
class FederatedForm:
    """What the execution form offers to run a workflow at the participating sites."""

    plan: str
    default_rounds: int
    participants: list[SiteView]  # with the datasets each reported

    @property
    def dataset_names(self) -> list[str]:
        return sorted({str(d.get("name", "")) for p in self.participants for d in p.datasets})


@dataclass(frozen=True, slots=True)
class WorkflowFormPage(Page):
    """The execution form; the script builds the parameter fields from the JSON Schema."""

    template = "workflow_form.html"
    module = "workflow_form"
    title = "Run a workflow"
    workflow: WorkflowView
    can_write: bool
    series: list[str]  # preselected by ``?series=uid1,uid2`` (the gallery links here)
    dataset: str  # preselected by ``?dataset=name``
    federated: FederatedForm | None = None  # administrators, for a federated plan's workflow

    def client_data(self) -> dict[str, Any]:
        return {
            "project": self.layout.project if self.layout else None,
            "workflow": self.workflow.name,
            "schema": self.workflow.parameters_schema,
            "series": self.series,
            "dataset": self.dataset,
            "plan": self.federated.plan if self.federated else None,
        }


@dataclass(frozen=True, slots=True)
class PeerRow:
    site: SiteView
    jobs: dict[str, int]  # by state


@dataclass(frozen=True, slots=True)
class PendingJob:
    """A job waiting for the data owner, with the facts of the decision."""

    job: SiteJobView
    exposure: ExposureView | None  # None: the dataset is no longer exposed
    policy: PolicyView | None  # None: the workflow is no longer allowed


@dataclass(frozen=True, slots=True)
class PolicyRow:
    policy: PolicyView
    installed_hash: str | None  # None: the workflow is not installed here


@dataclass(frozen=True, slots=True)
class SitesPage(Page):
    """Federation at this installation: peers, decisions, jobs, runs and the data owner's rules."""

    template = "sites.html"
    module = "sites"
    title = "Sites"
    site_name: str
    polling: bool
    orchestrator: str | None  # the one this site polls, if any: a second cannot be registered
    peers: list[PeerRow]
    pending: list[PendingJob]
    jobs: list[SiteJobView]  # received, newest first
    final_states: list[str]  # a job in one of these cannot be canceled
    exposed_projects: dict[str, str]  # exposed name -> project, for links to a job's run
    policies: list[PolicyRow]
    workflows: list[WorkflowView]  # installed and not allowed yet
    exposures: list[ExposureView]
    datasets: list[DatasetInfo]  # of every project, not exposed yet
    runs: list[FederatedRunView]  # started here as orchestrator, newest first
    default_max_output_bytes: int


@dataclass(frozen=True, slots=True)
class FederatedRunPage(Page):
    """One federated run at its orchestrator: rounds, each site's jobs, the pooled result."""

    template = "federated_run.html"
    module = "federated_run"
    title = "Federated run"
    run: FederatedRunView
    artifact: list[tuple[str, int]]  # the global artifact's files: name, size
    charts: list[Markup]  # SVG drawn here from the result, markup escaped by the chart code

    def client_data(self) -> dict[str, Any]:
        return {"run": self.run.id}


@dataclass(frozen=True, slots=True)
class RunsPage(Page):
    template = "runs.html"
    module = "runs"
    title = "Runs"
    runs: list[RunView]

    def client_data(self) -> dict[str, Any]:
        return {"project": self.layout.project if self.layout else None, "limit": len(self.runs)}


@dataclass(frozen=True, slots=True)
class RunPage(Page):
    """One run; the script polls it and draws the DAG, tasks, logs, artifacts and manifest."""

    template = "run.html"
    module = "run"
    title = "Run"
    run: RunDetailView
    can_write: bool

    def client_data(self) -> dict[str, Any]:
        return {
            "project": self.layout.project if self.layout else None,
            "run": self.run.id,
            "canWrite": self.can_write,
        }


@dataclass(frozen=True, slots=True)
class ViewerPage(Page):
    """One series; the script loads its metadata once and its frames on demand."""

    template = "viewer.html"
    module = "viewer"
    title = "Series"
    view: SeriesView

    def client_data(self) -> dict[str, Any]:
        project = self.layout.project if self.layout else None
        view = self.view
        return {
            "project": project,
            "series": asdict(view.series),
            "image": asdict(view.image) if view.image else None,
            "segmentations": [asdict(s) for s in view.segmentations],
            "keywords": view.keywords,
        }


@dataclass(frozen=True, slots=True)
class UploadPage(Page):
    """Drop files, folders and zip archives; the script sends them to the project."""

    template = "upload.html"
    module = "upload"
    title = "Upload"
    can_nifti: bool  # the import-nifti workflow is installed

    def client_data(self) -> dict[str, Any]:
        return {"project": self.layout.project if self.layout else None, "nifti": self.can_nifti}


__all__ = [
    "AuditFilters",
    "AuditPage",
    "DashboardPage",
    "DatasetPage",
    "DatasetsPage",
    "ErrorPage",
    "FederatedForm",
    "GalleryPage",
    "HomePage",
    "Layout",
    "LoginPage",
    "NoProjectPage",
    "NodeRow",
    "NodesAdminPage",
    "Page",
    "PageLinks",
    "PeerRow",
    "PendingJob",
    "PolicyRow",
    "ProjectAdminPage",
    "ProjectLink",
    "ProjectRow",
    "ProjectsAdminPage",
    "RunPage",
    "RunsPage",
    "SitesPage",
    "StudiesPage",
    "SystemPage",
    "TokenRow",
    "TokensPage",
    "UploadPage",
    "UserRow",
    "UsersAdminPage",
    "ViewerPage",
    "WorkflowFormPage",
    "WorkflowsPage",
]
