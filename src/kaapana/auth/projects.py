"""Projects: the unit of visibility. Data is stored once and made visible to projects.

The default project ``admin`` sees everything and owns the server's own AE title, so a scanner
that sends to ``KAAPANA`` lands there; other projects get AE titles of their own.
"""

import re

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
        with self._sessions() as session:
            project = session.scalar(select(Project).where(Project.name == name))
        if project is None:
            raise NotFound(f"no project named {name!r}")
        return project

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


__all__ = ["ADMIN_PROJECT", "Projects", "check_ae_title", "check_name"]
