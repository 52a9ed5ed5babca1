"""Projects: the unit of visibility. Data is stored once and made visible to projects.

The default project ``admin`` sees everything and owns the server's own AE title, so a scanner
that sends to ``KAAPANA`` lands there; other projects get AE titles of their own.
"""

import ipaddress
import re
from collections.abc import Sequence

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import Dataset, Project
from kaapana.errors import Conflict, InvalidInput, NotFound

ADMIN_PROJECT = "admin"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_ae_title(value: str, *, field: str = "ae_title") -> str:
    """An AE title as PS3.5 allows it: 1-16 characters of the default repertoire, no backslash."""
    title = value.strip()
    if not 0 < len(title) <= 16 or "\\" in title or not title.isascii() or not title.isprintable():
        raise InvalidInput(f"'{field}' must be 1-16 printable ASCII characters, got {value!r}")
    return title


def check_network(value: str) -> str:
    """An IPv4/IPv6 address or network in CIDR form, normalised."""
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError as exc:
        raise InvalidInput(
            f"'allowed_networks' entries must be addresses or CIDR networks, got {value[:64]!r}"
        ) from exc


def admits(project: Project, *, calling_ae_title: str, address: str) -> bool:
    """Whether the project's DIMSE rules let this peer store into or query it."""
    titles = project.allowed_calling_ae_titles
    if titles is not None and calling_ae_title.strip() not in titles:
        return False
    networks = project.allowed_networks
    if networks is None:
        return True
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(network) for network in networks)


def check_name(value: str, *, field: str = "name") -> str:
    if not _NAME.match(value):
        raise InvalidInput(
            f"'{field}' must start with a letter or digit and use only letters, digits, '_', '.', "
            f"'-' (at most 64), got {value[:80]!r}"
        )
    return value


class Projects:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    def bootstrap(self, *, ae_title: str) -> Project:
        """Make sure ``admin`` exists and answers to the server's AE title (idempotent)."""
        with write_transaction(self._engine) as session:
            admin = session.scalar(select(Project).where(Project.name == ADMIN_PROJECT))
            if admin is None:
                admin = Project(name=ADMIN_PROJECT, description="Sees every object in the archive.")
                session.add(admin)
            holder = session.scalar(select(Project).where(Project.ae_title == ae_title))
            if holder is None or holder is admin:
                admin.ae_title = ae_title
            return admin

    def create(self, name: str, *, ae_title: str | None = None, description: str = "") -> Project:
        project = Project(
            name=check_name(name),
            ae_title=check_ae_title(ae_title) if ae_title else None,
            description=description,
        )
        try:
            with write_transaction(self._engine) as session:
                session.add(project)
        except IntegrityError as exc:
            raise Conflict(
                f"a project named {name!r} or with AE title {ae_title!r} exists"
            ) from exc
        return project

    def list(self) -> list[Project]:
        with self._sessions() as session:
            return list(session.scalars(select(Project).order_by(Project.name)))

    def get(self, name: str) -> Project:
        project = self.find(name)
        if project is None:
            raise NotFound(f"no project named {name[:80]!r}")
        return project

    def find(self, name: str) -> Project | None:
        if not _NAME.match(name):  # no such project; and NUL would upset PostgreSQL
            return None
        with self._sessions() as session:
            return session.scalar(select(Project).where(Project.name == name))

    def update(
        self,
        name: str,
        *,
        description: str | None = None,
        ae_title: str | None = None,
        allowed_calling_ae_titles: Sequence[str] | None = None,
        allowed_networks: Sequence[str] | None = None,
        dimse_identity_required: bool | None = None,
        clear: frozenset[str] = frozenset(),
    ) -> Project:
        """Change the given fields; names in ``clear`` are set to None (no AE title, no rule)."""
        titles = [
            check_ae_title(t, field="allowed_calling_ae_titles")
            for t in allowed_calling_ae_titles or []
        ]
        networks = [check_network(n) for n in allowed_networks or []]
        try:
            with write_transaction(self._engine) as session:
                project = session.scalar(select(Project).where(Project.name == name))
                if project is None:
                    raise NotFound(f"no project named {name!r}")
                if description is not None:
                    project.description = description
                if ae_title is not None:
                    project.ae_title = check_ae_title(ae_title)
                if allowed_calling_ae_titles is not None:
                    project.allowed_calling_ae_titles = titles
                if allowed_networks is not None:
                    project.allowed_networks = networks
                if dimse_identity_required is not None:
                    project.dimse_identity_required = dimse_identity_required
                for field in clear:
                    setattr(project, field, None)
                return project
        except IntegrityError as exc:
            raise Conflict(f"AE title {ae_title!r} belongs to another project") from exc

    def pks_named(self, names: Sequence[str]) -> set[int]:
        if not names:
            return set()
        with self._sessions() as session:
            return set(session.scalars(select(Project.id).where(Project.name.in_(names))))

    def by_ae_title(self, ae_title: str) -> Project | None:
        with self._sessions() as session:
            return session.scalar(select(Project).where(Project.ae_title == ae_title.strip()))

    def ensure_dataset(self, project: Project, name: str) -> int:
        """The id of dataset ``name`` in ``project``, created empty when new."""
        check_name(name, field="dataset")
        query = select(Dataset.id).where(Dataset.project_pk == project.id, Dataset.name == name)
        try:
            with write_transaction(self._engine) as session:
                pk = session.scalar(query)
                if pk is None:
                    dataset = Dataset(project_pk=project.id, name=name)
                    session.add(dataset)
                    session.flush()
                    pk = dataset.id
                return pk
        except IntegrityError:  # another receiver process created it a moment ago
            with self._sessions() as session:
                return session.scalars(query).one()


def scope_of(project: Project) -> frozenset[int] | None:
    """The ``ProjectScope`` of reading one project: its series; ``admin`` sees everything."""
    return None if project.name == ADMIN_PROJECT else frozenset({project.id})


__all__ = [
    "ADMIN_PROJECT",
    "Projects",
    "admits",
    "check_ae_title",
    "check_name",
    "check_network",
    "scope_of",
]
