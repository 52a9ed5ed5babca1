"""OIDC login in the browser: authorization-code flow with PKCE against a real provider stand-in."""

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from kaapana.api import create_app
from kaapana.auth.oidc_login import code_challenge
from kaapana.config import Settings
from kaapana.platform import Platform

CLIENT_ID = "kaapana-web"
CLIENT_SECRET = "client-secret-1"


class CodeFlowProvider:
    """Discovery, JWKS, an authorization endpoint that approves at once, and a token endpoint
    that checks the client secret, the redirect URI and the PKCE verifier like a real one."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict[str, str]] = {}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._answer(200, provider.discovery)
                elif url.path == "/certs":
                    self._answer(200, {"keys": [jwk]})
                elif url.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = query
                    answer = urlencode({"code": code, "state": query["state"]})
                    self.send_response(302)
                    self.send_header("Location", f"{query['redirect_uri']}?{answer}")
                    self.end_headers()
                else:
                    self._answer(404, {})

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    self._answer(401, {"error": "invalid_client"})
                    return
                asked = provider.codes.pop(form.get("code", ""), None)
                if (
                    asked is None
                    or form.get("redirect_uri") != asked["redirect_uri"]
                    or code_challenge(form.get("code_verifier", "")) != asked["code_challenge"]
                ):
                    self._answer(400, {"error": "invalid_grant", "error_description": "bad code"})
                    return
                self._answer(200, {"id_token": provider.id_token(), "token_type": "Bearer"})

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.discovery = {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/certs",
        }
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def id_token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "subject-olivia",
            "iat": now,
            "exp": now + 300,
            "preferred_username": "olivia",
            "kaapana_roles": ["A:scientist"],
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def provider() -> Iterator[CodeFlowProvider]:
    running = CodeFlowProvider()
    yield running
    running.server.shutdown()


@pytest.fixture
def client(
    make_settings: Callable[..., Settings], provider: CodeFlowProvider
) -> Iterator[TestClient]:
    settings = make_settings(
        admin_password="admin-password-1",
        oidc_issuer=provider.issuer,
        oidc_audience=CLIENT_ID,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
    with Platform(settings) as platform:
        platform.archive.projects.create("A")
        with TestClient(create_app(settings, platform=platform)) as running:
            yield running


def _authorize(client: TestClient, next_url: str) -> tuple[str, str]:
    """Start the login and let the provider answer; returns the callback path and its query."""
    started = client.get("/auth/oidc/login", params={"next": next_url}, follow_redirects=False)
    assert started.status_code == 303
    asked = parse_qs(urlsplit(started.headers["location"]).query)
    assert asked["client_id"] == [CLIENT_ID] and asked["code_challenge_method"] == ["S256"]
    assert asked["redirect_uri"] == ["http://testserver/auth/oidc/callback"]
    answer = httpx.get(started.headers["location"], follow_redirects=False)
    assert answer.status_code == 302
    callback = urlsplit(answer.headers["location"])
    return callback.path, callback.query


def test_login_page_offers_oidc(client: TestClient) -> None:
    page = client.get("/login", params={"next": "/p/A/"}).text
    assert 'href="/auth/oidc/login?next=/p/A/"' in page


def test_code_flow_opens_a_session_for_the_provider_user(client: TestClient) -> None:
    path, query = _authorize(client, "/p/A/studies")
    done = client.get(f"{path}?{query}", follow_redirects=False)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/p/A/studies"
    me = client.get("/api/v1/auth/me").json()
    assert me["username"] == "olivia" and me["via"] == "session"
    assert me["projects"] == [{"project": "A", "role": "scientist"}]
    assert client.get("/p/A/").status_code == 200


def test_a_callback_with_another_state_is_refused(client: TestClient) -> None:
    path, query = _authorize(client, "/")
    values = parse_qs(query)
    forged = urlencode({"code": values["code"][0], "state": "someone-elses"})
    refused = client.get(f"{path}?{forged}", follow_redirects=False)
    assert refused.status_code == 400
    assert "does not match this browser" in refused.text
    assert "kaapana_session" not in client.cookies


def test_an_unknown_code_is_refused_by_the_provider(client: TestClient) -> None:
    path, query = _authorize(client, "/")
    state = parse_qs(query)["state"][0]
    refused = client.get(f"{path}?{urlencode({'code': 'made-up', 'state': state})}")
    assert refused.status_code == 401
    assert "refused the authorization code: bad code" in refused.text


def test_a_provider_error_is_shown(client: TestClient) -> None:
    answer = client.get(
        "/auth/oidc/callback", params={"error": "access_denied", "error_description": "<b>no</b>"}
    )
    assert answer.status_code == 401
    assert "refused the login: &lt;b&gt;no&lt;/b&gt;" in answer.text


def test_without_a_client_id_there_is_no_oidc_login(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(admin_password="admin-password-1")
    with TestClient(create_app(settings)) as plain:
        assert "Log in with OIDC" not in plain.get("/login").text
        assert plain.get("/auth/oidc/login").status_code == 404
