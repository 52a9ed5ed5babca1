"""Identity: login sessions with CSRF, API tokens, throttling, and the audit trail."""

from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, Site


def test_login_session_cookie_and_csrf(site: Site) -> None:
    client = site.client
    denied = client.get("/api/v1/auth/me")
    assert denied.status_code == 401
    assert denied.json()["error"] == "unauthorized"
    answer = client.post("/api/v1/auth/login", json={"username": "pi_a", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert "kaapana_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    csrf = answer.json()["csrf_token"]
    assert client.get("/api/v1/auth/me").json()["projects"] == [
        {"project": "A", "role": "principal_investigator"}
    ]
    body = {"role": "scientist"}
    refused = client.put("/api/v1/projects/A/members/sci_b", json=body)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    assert site.platform.auth.users.memberships(username="sci_b")[0].project == "B"
    allowed = client.put(
        "/api/v1/projects/A/members/sci_b", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert allowed.status_code == 200, allowed.text
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


def test_wrong_password_is_audited_and_throttled(site: Site) -> None:
    client = site.client
    for _ in range(5):
        answer = client.post(
            "/api/v1/auth/login", json={"username": "sci_a", "password": "nope-nope"}
        )
        assert answer.status_code == 401
    slowed = client.post("/api/v1/auth/login", json={"username": "sci_a", "password": PASSWORD})
    assert slowed.status_code == 429
    assert int(slowed.headers["Retry-After"]) >= 1
    failures = site.platform.auth.audit.query(action="login", actor="sci_a")
    assert [e.outcome for e in failures] == ["failure"] * 5


def test_tokens_are_shown_once_scoped_and_revocable(site: Site) -> None:
    client = site.client
    created = client.post(
        "/api/v1/tokens",
        json={"name": "script", "projects": ["A"], "can_write": False},
        headers=site.headers("admin"),
    )
    assert created.status_code == 201, created.text
    secret = created.json()["token"]
    bearer = {"Authorization": f"Bearer {secret}"}
    me = client.get("/api/v1/auth/me", headers=bearer).json()
    assert me["can_write"] is False and me["sees_everything"] is False
    assert [p["project"] for p in me["projects"]] == ["A"]
    listed = client.get("/api/v1/tokens", headers=bearer).json()
    assert all("token" not in t for t in listed)
    assert secret not in str(listed)
    revoke = client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=site.headers("admin"))
    assert revoke.status_code == 204
    gone = client.get("/api/v1/auth/me", headers=bearer)
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]
    assert (
        client.get("/api/v1/auth/me", headers={"Authorization": "Bearer kpt_bogus"}).status_code
        == 401
    )


def test_first_start_creates_admin(site: Site) -> None:
    answer = site.client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert answer.status_code == 200
    assert answer.json()["is_admin"] is True


def test_metrics_for_administrators(site: Site) -> None:
    site.get("/dicomweb/studies")
    assert site.get("/metrics", "sci_a").status_code == 403
    answer = site.get("/metrics")
    assert answer.status_code == 200
    text = answer.text
    assert 'kaapana_archive_objects{level="instances"} 9.0' in text
    assert (
        'kaapana_http_requests_total{method="GET",route="/dicomweb/studies",status="200"}' in text
    )
    assert "kaapana_http_request_duration_seconds_bucket" in text


def test_audit_trail_over_rest(site: Site) -> None:
    site.client.post("/api/v1/auth/login", json={"username": "sci_a", "password": "wrong-one"})
    study = site.study_a[0].StudyInstanceUID
    site.get(f"/dicomweb/studies/{study}/metadata", "sci_a")
    site.get(f"/dicomweb/studies/{study}/metadata", "sci_a")  # within the minute: one record
    assert site.get("/api/v1/audit", "sci_a").status_code == 403
    logins = site.get("/api/v1/audit", params={"action": "login"}).json()
    assert [(e["actor"], e["outcome"]) for e in logins] == [("sci_a", "failure")]
    retrievals = site.get("/api/v1/audit", params={"actor": "sci_a", "action": "retrieve"}).json()
    assert [e["target"] for e in retrievals] == [f"study:{study}"]
    assert retrievals[0]["detail"]["kind"] == "metadata"
    first_page = site.get("/api/v1/audit", params={"limit": 1}).json()
    older = site.get("/api/v1/audit", params={"before_id": first_page[0]["id"]}).json()
    assert older and all(e["id"] < first_page[0]["id"] for e in older)
