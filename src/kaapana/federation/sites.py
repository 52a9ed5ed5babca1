"""Registered peers: participants at an orchestrator, the orchestrator at a participant."""

import builtins
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from kaapana.auth.tokens import token_hash
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import FederationPeer, utcnow
from kaapana.errors import Conflict, InvalidInput, NotFound, Unauthorized
from kaapana.federation.keys import (
    KEY_SUFFIX,
    SECRET_SUFFIX,
    derive_keys,
    new_enrolment_secret,
    read_secret_file,
    remove_secret_files,
    write_secret_file,
)
from kaapana.federation.states import PeerRoleValues
from kaapana.workflows.definitions import check_name

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class SiteView:
    name: str
    role: PeerRoleValues
    url: str
    verify_tls: bool
    pinned_sha256: str
    datasets: list[dict[str, Any]]
    last_seen_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EnrolledParticipant:
    """A new participant: ``secret`` exists only here, to be handed over out of band."""

    site: SiteView
    secret: str


def _view(peer: FederationPeer) -> SiteView:
    return SiteView(
        name=peer.name,
        role=PeerRoleValues(peer.role),
        url=peer.url,
        verify_tls=peer.verify_tls,
        pinned_sha256=peer.pinned_sha256,
        datasets=list(peer.datasets or []),
        last_seen_at=peer.last_seen_at,
        created_at=peer.created_at,
    )


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"'url' must be an http(s) URL of the orchestrator, got {url!r}")
    return url.rstrip("/")


def _check_pin(pin: str) -> str:
    normalized = pin.replace(":", "").lower()
    if normalized and not _SHA256.match(normalized):
        raise InvalidInput(
            f"'pinned_sha256' must be the SHA-256 of the certificate (64 hex digits), got {pin!r}"
        )
    return normalized


class Sites:
    def __init__(self, *, engine: Engine, secrets_dir: Path) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self.secrets_dir = secrets_dir

    def add_participant(self, name: str) -> EnrolledParticipant:
        """Register a participant; the returned enrolment secret is shown once."""
        check_name("site name", name)
        secret = new_enrolment_secret()
        keys = derive_keys(secret)
        peer = FederationPeer(
            name=name, role=PeerRoleValues.participant, token_hash=keys.token_hash
        )
        self._insert(peer)
        write_secret_file(self.secrets_dir, f"{name}{KEY_SUFFIX}", keys.fernet_key)
        return EnrolledParticipant(site=_view(peer), secret=secret)

    def add_orchestrator(
        self, name: str, *, url: str, secret: str, verify_tls: bool = True, pinned_sha256: str = ""
    ) -> SiteView:
        """Register the orchestrator this site polls (one per installation)."""
        check_name("site name", name)
        derive_keys(secret)  # refuses a malformed secret before anything is stored
        if self.orchestrator() is not None:
            raise Conflict("an orchestrator is registered already; remove it first")
        peer = FederationPeer(
            name=name,
            role=PeerRoleValues.orchestrator,
            url=_check_url(url),
            verify_tls=verify_tls,
            pinned_sha256=_check_pin(pinned_sha256),
        )
        self._insert(peer)
        write_secret_file(self.secrets_dir, f"{name}{SECRET_SUFFIX}", secret.strip().encode())
        return _view(peer)

    def _insert(self, peer: FederationPeer) -> None:
        try:
            with write_transaction(self._engine) as session:
                session.add(peer)
        except IntegrityError as exc:
            raise Conflict(f"a site named {peer.name!r} is registered already") from exc

    def list(self) -> list[SiteView]:
        with self._sessions() as session:
            peers = session.scalars(select(FederationPeer).order_by(FederationPeer.name))
            return [_view(p) for p in peers]

    def get(self, name: str) -> SiteView:
        with self._sessions() as session:
            peer = session.scalar(select(FederationPeer).where(FederationPeer.name == name))
            if peer is None:
                raise NotFound(f"site {name!r} not found")
            return _view(peer)

    def remove(self, name: str) -> None:
        with write_transaction(self._engine) as session:
            peer = session.scalar(select(FederationPeer).where(FederationPeer.name == name))
            if peer is None:
                raise NotFound(f"site {name!r} not found")
            session.delete(peer)
        remove_secret_files(self.secrets_dir, name)

    def orchestrator(self) -> SiteView | None:
        with self._sessions() as session:
            peer = session.scalar(
                select(FederationPeer).where(FederationPeer.role == PeerRoleValues.orchestrator)
            )
            return _view(peer) if peer is not None else None

    def participants(self) -> builtins.list[str]:
        return [s.name for s in self.list() if s.role is PeerRoleValues.participant]

    def authenticate(self, token: str) -> str:
        """The participant presenting ``token``, marked as seen; ``Unauthorized`` otherwise."""
        with write_transaction(self._engine) as session:
            peer = session.scalar(
                select(FederationPeer).where(
                    FederationPeer.token_hash == token_hash(token),
                    FederationPeer.role == PeerRoleValues.participant,
                )
            )
            if peer is None:
                raise Unauthorized("unknown federation token")
            peer.last_seen_at = utcnow()
            return peer.name

    def mark_seen(self, name: str) -> None:
        """The orchestrator answered a poll: its last contact, as a participant's is there."""
        with write_transaction(self._engine) as session:
            peer = session.scalar(select(FederationPeer).where(FederationPeer.name == name))
            if peer is not None:
                peer.last_seen_at = utcnow()

    def report_datasets(self, name: str, datasets: builtins.list[dict[str, Any]]) -> None:
        with write_transaction(self._engine) as session:
            peer = session.scalar(select(FederationPeer).where(FederationPeer.name == name))
            if peer is not None and peer.datasets != datasets:
                peer.datasets = datasets

    def participant_key(self, name: str) -> bytes:
        return read_secret_file(self.secrets_dir, f"{name}{KEY_SUFFIX}")

    def orchestrator_secret(self, name: str) -> str:
        return read_secret_file(self.secrets_dir, f"{name}{SECRET_SUFFIX}").decode()


__all__ = ["EnrolledParticipant", "SiteView", "Sites"]
