"""DICOM nodes: the remote AEs we send to and that may retrieve from us (C-MOVE destinations).

A C-MOVE names its destination by AE title only; the host and port come from here, so only nodes
an administrator registered can receive data.
"""

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from kaapana.auth.projects import check_ae_title, check_name
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import DicomNode
from kaapana.errors import Conflict, InvalidInput, NotFound


class Nodes:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    def add(
        self, name: str, ae_title: str, host: str, port: int, description: str = ""
    ) -> DicomNode:
        """Register a node; ``Conflict`` when its name or AE title is taken."""
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"'port' must be an int, got {type(port).__name__}")
        if not 1 <= port <= 65535:
            raise InvalidInput(f"'port' must be 1-65535, got {port}")
        if not host.strip():
            raise InvalidInput(f"'host' must not be empty, got {host!r}")
        node = DicomNode(
            name=check_name(name),
            ae_title=check_ae_title(ae_title),
            host=host.strip(),
            port=port,
            description=description,
        )
        try:
            with write_transaction(self._engine) as session:
                session.add(node)
        except IntegrityError as exc:
            raise Conflict(
                f"a DICOM node named {name!r} or with AE title {node.ae_title!r} exists"
            ) from exc
        return node

    def list(self) -> list[DicomNode]:
        with self._sessions() as session:
            return list(session.scalars(select(DicomNode).order_by(DicomNode.name)))

    def get(self, name: str) -> DicomNode:
        with self._sessions() as session:
            node = session.scalar(select(DicomNode).where(DicomNode.name == name))
        if node is None:
            raise NotFound(f"no DICOM node named {name!r}")
        return node

    def by_ae_title(self, ae_title: str) -> DicomNode | None:
        with self._sessions() as session:
            return session.scalar(select(DicomNode).where(DicomNode.ae_title == ae_title.strip()))

    def remove(self, name: str) -> None:
        """Forget a node; ``NotFound`` if there is none of that name."""
        with write_transaction(self._engine) as session:
            removed = session.execute(delete(DicomNode).where(DicomNode.name == name)).rowcount
        if not removed:
            raise NotFound(f"no DICOM node named {name!r}")


__all__ = ["Nodes"]
