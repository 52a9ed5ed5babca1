"""Bearer JWTs from an OpenID Connect provider: a real key pair, discovery and JWKS over HTTP."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from kaapana.api import create_app
from kaapana.config import Settings
from kaapana.platform import Platform

AUDIENCE = "kaapana"


class Provider:
    """A minimal identity provider: discovery document, JWKS, and a signer for its tokens."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
        documents: dict[str, Any] = {"/realms/test/protocol/openid-connect/certs": {"keys": [jwk]}}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                document = documents.get(self.path)
                body = json.dumps(document).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}/realms/test"
        documents["/realms/test/.well-known/openid-configuration"] = {
            "issuer": self.issuer,
            "jwks_uri": self.issuer + "/protocol/openid-connect/certs",
        }
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "subject-olivia",
            "iat": now,
            "exp": now + 300,
            "preferred_username": "olivia",
            "name": "Olivia O.",
            "kaapana_roles": ["A:principal_investigator"],
        }
        payload.update(claims)
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def provider() -> Iterator[Provider]:
    running = Provider()
    yield running
    running.server.shutdown()


@pytest.fixture
def client(make_settings: Callable[..., Settings], provider: Provider) -> Iterator[TestClient]:
    settings = make_settings(
        admin_password="admin-password-1", oidc_issuer=provider.issuer, oidc_audience=AUDIENCE
    )
    with Platform(settings) as platform:
        platform.archive.projects.create("A")
        platform.archive.projects.create("B")
        with TestClient(create_app(settings, platform=platform)) as test_client:
            yield test_client


def _me(client: TestClient, token: str) -> Any:
    return client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


def test_provider_tokens_create_users_and_set_their_roles(
    client: TestClient, provider: Provider
) -> None:
    me = _me(client, provider.token())
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "olivia"
    assert me.json()["projects"] == [{"project": "A", "role": "principal_investigator"}]
    changed = _me(client, provider.token(kaapana_roles=["B:scientist", "unknown:scientist"]))
    assert changed.json()["projects"] == [{"project": "B", "role": "scientist"}]
    admin = _me(client, provider.token(kaapana_roles=["admin"]))
    assert admin.json()["is_admin"] is True


def test_bad_provider_tokens_are_refused(client: TestClient, provider: Provider) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "expired": provider.token(exp=int(time.time()) - 10),
        "other issuer": provider.token(iss="http://evil.example/realms/test"),
        "other audience": provider.token(aud="someone-else"),
        "forged signature": provider.token(key=stranger),
        "no username": provider.token(preferred_username=None),
    }
    for case, token in cases.items():
        answer = _me(client, token)
        assert answer.status_code == 401, case
        assert answer.json()["error"] == "unauthorized", case
