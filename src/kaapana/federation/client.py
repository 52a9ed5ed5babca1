"""The participant's HTTP(S) client of its orchestrator: the only connection federation makes.

TLS certificates are verified by default; a pinned SHA-256 of the orchestrator's certificate
is checked on every response as well (with ``verify_tls`` off, the pin alone authenticates the
server, for a self-signed certificate).
"""

import hashlib
from types import TracebackType
from typing import Any, Self

import httpx

from kaapana import __version__
from kaapana.errors import KaapanaError
from kaapana.federation.keys import derive_keys
from kaapana.federation.sites import SiteView

PROTOCOL_PREFIX = "/api/v1/federation/protocol"


class OrchestratorError(KaapanaError):
    """The orchestrator refused a request (``status`` is its HTTP status)."""

    status = 502
    code = "orchestrator_error"

    def __init__(self, detail: str, *, status: int) -> None:
        super().__init__(detail)
        self.remote_status = status


class CertificateMismatch(KaapanaError):
    status = 502
    code = "certificate_mismatch"


class OrchestratorClient:
    def __init__(self, orchestrator: SiteView, secret: str, *, timeout: float) -> None:
        keys = derive_keys(secret)
        self.name = orchestrator.name
        self.fernet_key = keys.fernet_key
        self._pin = orchestrator.pinned_sha256
        self._http = httpx.Client(
            base_url=orchestrator.url + PROTOCOL_PREFIX,
            verify=orchestrator.verify_tls,
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={
                "Authorization": f"Bearer {keys.token}",
                "User-Agent": f"kaapana/{__version__} federation",
            },
        )

    def _check(self, response: httpx.Response) -> httpx.Response:
        if self._pin:
            stream = response.extensions.get("network_stream")
            ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
            certificate = ssl_object.getpeercert(True) if ssl_object else None
            if certificate is None:
                raise CertificateMismatch(
                    f"orchestrator {self.name} has a pinned certificate, but the connection "
                    "is not TLS"
                )
            seen = hashlib.sha256(certificate).hexdigest()
            if seen != self._pin:
                raise CertificateMismatch(
                    f"orchestrator {self.name}'s certificate has SHA-256 {seen}, "
                    f"not the pinned {self._pin}"
                )
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text
            raise OrchestratorError(
                f"orchestrator {self.name} answered {response.status_code}: {detail}",
                status=response.status_code,
            )
        return response

    def poll(
        self, *, site: str, datasets: list[dict[str, Any]], active: list[str], wait: float
    ) -> dict[str, Any]:
        body = {"site": site, "datasets": datasets, "active": active, "wait": wait}
        answer: dict[str, Any] = self._check(
            self._http.post("/poll", json=body, timeout=wait + 30)
        ).json()
        return answer

    def report(self, job_id: str, state: str, detail: str = "") -> None:
        self._check(
            self._http.post(f"/jobs/{job_id}/status", json={"state": state, "detail": detail})
        )

    def input(self, job_id: str) -> bytes:
        return self._check(self._http.get(f"/jobs/{job_id}/input")).content

    def model(self, job_id: str) -> bytes:
        return self._check(self._http.get(f"/jobs/{job_id}/model")).content

    def report_model(self, job_id: str, state: str, detail: str = "") -> None:
        self._check(
            self._http.post(f"/jobs/{job_id}/model", json={"state": state, "detail": detail})
        )

    def upload(self, job_id: str, sealed: bytes) -> None:
        self._check(
            self._http.post(
                f"/jobs/{job_id}/outputs",
                content=sealed,
                headers={"Content-Type": "application/octet-stream"},
            )
        )

    def upload_logs(self, job_id: str, sealed: bytes) -> None:
        self._check(
            self._http.post(
                f"/jobs/{job_id}/logs",
                content=sealed,
                headers={"Content-Type": "application/octet-stream"},
            )
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["PROTOCOL_PREFIX", "CertificateMismatch", "OrchestratorClient", "OrchestratorError"]
