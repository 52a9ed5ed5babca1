"""Who may do what, on every interface: the permission matrix of issue-level acceptance.

Subjects: anonymous, a scientist and a principal investigator of project A, a scientist of B,
and an administrator. Target: project A and its study. DIMSE callers identify themselves with
User Identity Negotiation (username + API token) on project A's AE title, which demands it.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, build_role, evt
from pynetdicom.pdu_primitives import UserIdentityNegotiation
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from kaapana.archive.nodes import Nodes
from kaapana.dimse.scp import start_scp
from kaapana.testing import ct_series
from tests.api.conftest import Site
from tests.helpers import part10, wait_until

SUBJECTS = ("anonymous", "sci_a", "pi_a", "sci_b", "admin")
ALLOW, DENY, HIDDEN, NO_AUTH = "allow", "deny", "hidden", "unauthenticated"
# interface -> subject -> expected outcome
MATRIX: dict[str, dict[str, str]] = {
    "QIDO": {"anonymous": NO_AUTH, "sci_a": ALLOW, "pi_a": ALLOW, "sci_b": HIDDEN, "admin": ALLOW},
    "WADO": {"anonymous": NO_AUTH, "sci_a": ALLOW, "pi_a": ALLOW, "sci_b": HIDDEN, "admin": ALLOW},
    "STOW": {"anonymous": NO_AUTH, "sci_a": ALLOW, "pi_a": ALLOW, "sci_b": HIDDEN, "admin": ALLOW},
    "DELETE": {"anonymous": NO_AUTH, "sci_a": DENY, "pi_a": ALLOW, "sci_b": HIDDEN, "admin": ALLOW},
    "REST read": {
        "anonymous": NO_AUTH,
        "sci_a": ALLOW,
        "pi_a": ALLOW,
        "sci_b": HIDDEN,
        "admin": ALLOW,
    },
    "REST manage": {
        "anonymous": NO_AUTH,
        "sci_a": DENY,
        "pi_a": ALLOW,
        "sci_b": HIDDEN,
        "admin": ALLOW,
    },
    "REST admin": {
        "anonymous": NO_AUTH,
        "sci_a": DENY,
        "pi_a": DENY,
        "sci_b": DENY,
        "admin": ALLOW,
    },
    "C-FIND": {"anonymous": DENY, "sci_a": ALLOW, "pi_a": ALLOW, "sci_b": HIDDEN, "admin": ALLOW},
    "C-MOVE": {"anonymous": DENY, "sci_a": ALLOW, "pi_a": ALLOW, "sci_b": HIDDEN, "admin": ALLOW},
    "C-GET": {"anonymous": DENY, "sci_a": ALLOW, "pi_a": ALLOW, "sci_b": HIDDEN, "admin": ALLOW},
    "C-STORE": {"anonymous": DENY, "sci_a": ALLOW, "pi_a": ALLOW, "sci_b": HIDDEN, "admin": ALLOW},
}
HTTP_OUTCOMES = {200: ALLOW, 201: ALLOW, 204: ALLOW, 401: NO_AUTH, 403: DENY, 404: HIDDEN}


def _http(site: Site, interface: str, who: str) -> str:
    study = site.study_a[0].StudyInstanceUID
    series = site.study_a[0].SeriesInstanceUID
    headers = site.headers(who)
    client = site.client
    if interface == "QIDO":
        answer = client.get(f"/dicomweb/projects/A/studies/{study}/series", headers=headers)
        if answer.status_code == 200 and not answer.json():
            return HIDDEN
    elif interface == "WADO":
        answer = client.get(f"/dicomweb/studies/{study}/metadata", headers=headers)
    elif interface == "STOW":
        new = ct_series(patient_id=f"P-{who}", rows=16, columns=16, slices=1, seed=7)
        boundary = "matrix-boundary"
        body = (
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + part10(new[0])
            + f"\r\n--{boundary}--\r\n".encode()
        )
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        answer = client.post(
            "/dicomweb/projects/A/studies",
            content=body,
            headers={**headers, "Content-Type": content_type},
        )
    elif interface == "DELETE":
        answer = client.delete(f"/dicomweb/studies/{study}/series/{series}", headers=headers)
    elif interface == "REST read":
        answer = client.get("/api/v1/projects/A/members", headers=headers)
    elif interface == "REST manage":
        answer = client.put(
            "/api/v1/projects/A/members/sci_b", json={"role": "scientist"}, headers=headers
        )
    else:
        answer = client.get("/api/v1/users", headers=headers)
    return HTTP_OUTCOMES[answer.status_code]


@pytest.fixture
def dimse(site: Site) -> Iterator[int]:
    site.platform.archive.projects.update("A", dimse_identity_required=True)
    server = start_scp(site.platform, host="127.0.0.1", port=0)
    yield server.server_address[1]
    server.shutdown()
    server.wait_idle(10)


@pytest.fixture
def destination(site: Site) -> Iterator[list[Dataset]]:
    """A storage SCP registered as C-MOVE destination ``DEST``; collects what it receives."""
    received: list[Dataset] = []

    def store(event: evt.Event) -> int:
        received.append(event.dataset)
        return 0x0000

    ae = AE(ae_title="DEST")
    ae.supported_contexts = StoragePresentationContexts
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, store)])
    Nodes(site.platform.engine).add("dest", "DEST", "127.0.0.1", server.server_address[1])
    yield received
    server.shutdown()


def wait_for(fetch: Callable[[], list[Any]]) -> list[Any]:
    """The association's end (and its audit record) follows the release by a moment."""
    wait_until(lambda: bool(fetch()), 10, "the audit record")
    return fetch()


def _associate(site: Site, port: int, who: str, contexts: list[Any], roles: list[Any]) -> Any:
    ae = AE(ae_title="MATRIX")
    for context in contexts:
        ae.add_requested_context(context)
    extra: list[Any] = list(roles)
    if who != "anonymous":
        identity = UserIdentityNegotiation()
        identity.user_identity_type = 2
        identity.primary_field = who.encode()
        identity.secondary_field = site.headers(who)["Authorization"].split()[1].encode()
        extra.append(identity)
    handlers = [(evt.EVT_C_STORE, lambda event: 0x0000)]
    return ae.associate("127.0.0.1", port, ae_title="PROJ_A", ext_neg=extra, evt_handlers=handlers)


def _dimse(site: Site, interface: str, who: str, port: int, received: list[Dataset]) -> str:
    study = site.study_a[0].StudyInstanceUID
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study
    models = {
        "C-FIND": StudyRootQueryRetrieveInformationModelFind,
        "C-MOVE": StudyRootQueryRetrieveInformationModelMove,
        "C-GET": StudyRootQueryRetrieveInformationModelGet,
    }

    roles: list[Any] = []
    if interface == "C-STORE":
        contexts: list[Any] = [CTImageStorage]
    elif interface == "C-GET":
        contexts = [models[interface], CTImageStorage, MRImageStorage]
        roles = [build_role(sop_class, scp_role=True) for sop_class in contexts[1:]]
    else:
        contexts = [models[interface]]
    assoc = _associate(site, port, who, contexts, roles)
    if not assoc.is_established:
        return HIDDEN if assoc.is_rejected else "no association"
    try:
        if interface == "C-STORE":
            new = ct_series(patient_id=f"PD-{who}", rows=16, columns=16, slices=1, seed=8)[0]
            status = assoc.send_c_store(new)
            return ALLOW if status.Status == 0x0000 else DENY
        if interface == "C-FIND":
            answers = list(assoc.send_c_find(query, models[interface]))
            statuses = [status.Status for status, _ in answers if status]
            return ALLOW if 0xFF00 in statuses else DENY
        before = len(received)
        if interface == "C-MOVE":
            answers = list(assoc.send_c_move(query, "DEST", models[interface]))
            final = answers[-1][0]
            delivered = len(received) - before
        else:
            answers = list(assoc.send_c_get(query, models[interface]))
            final = answers[-1][0]
            delivered = int(final.get("NumberOfCompletedSuboperations", 0))
        return ALLOW if final.Status == 0x0000 and delivered == 6 else DENY
    finally:
        assoc.release()


@pytest.mark.parametrize("who", SUBJECTS)
def test_http_permission_matrix(site: Site, who: str) -> None:
    outcomes = {
        interface: _http(site, interface, who) for interface in MATRIX if interface[0] != "C"
    }
    expected = {interface: MATRIX[interface][who] for interface in outcomes}
    assert outcomes == expected


@pytest.mark.parametrize("who", SUBJECTS)
def test_dimse_permission_matrix(
    site: Site, dimse: int, destination: list[Dataset], who: str
) -> None:
    interfaces = [name for name in MATRIX if name.startswith("C-")]
    outcomes = {name: _dimse(site, name, who, dimse, destination) for name in interfaces}
    assert outcomes == {name: MATRIX[name][who] for name in interfaces}
    audit = site.platform.auth.audit
    retrievals = {e.detail["kind"] for e in audit.query(actor=who, action="retrieve")}
    stores = audit.query(actor=who, action="store")
    if MATRIX["C-MOVE"][who] == ALLOW:
        assert retrievals == {"C-MOVE", "C-GET"}
        assert wait_for(lambda: audit.query(actor=who, action="store"))[0].detail["via"] == "DIMSE"
    else:
        assert not retrievals and not stores
