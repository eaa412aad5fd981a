"""Accounts and tokens over HTTP: register, login, logout, API tokens, bad tokens, sessions."""

import time
import uuid

import jwt
import pytest


def new_email() -> str:
    return f"a-{uuid.uuid4().hex[:10]}@example.com"


def login(api, email, password="long enough pw"):
    return api.post("/auth/login", json={"email": email, "password": password})


def register(api, email, password="long enough pw"):
    return api.post("/auth/register", json={"email": email, "password": password})


def test_register_normalises_email_and_rejects_duplicates(api):
    email = new_email()
    response = register(api, f"  {email.upper()} ")
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email and body["user_id"] and body["created_at"]
    assert "password" not in str(body)
    again = register(api, email)
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]


@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email", "password": "long enough pw"}, "email"),
    ({"email": "x@example.com", "password": "short"}, "password"),
    ({"email": "x@example.com"}, "password"),
    ({"email": "a\u0000b@example.com", "password": "long enough pw"}, "email"),
])
def test_register_validation(api, body, field):
    response = api.post("/auth/register", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_login_returns_a_bearer_jwt_with_the_expected_claims(api):
    email = new_email()
    user_id = register(api, email).json()["user_id"]
    body = login(api, email).json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user_id
    assert {"exp", "iat", "iss", "aud", "jti"} <= set(claims)
    me = api.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["email"] == email and me["user_id"] == user_id


def test_wrong_password_and_unknown_email_look_the_same(api):
    email = new_email()
    register(api, email)
    wrong = login(api, email, "not the password")
    unknown = login(api, new_email())
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_login_attempts_are_limited_per_email(base_url, api):
    import httpx

    from tests.conftest import fresh_ip

    email = new_email()
    register(api, email)
    statuses = []
    for _ in range(6):  # a new address each time: the per-email limit still applies
        with httpx.Client(base_url=base_url, headers={"X-Forwarded-For": fresh_ip()}) as client:
            response = login(client, email, "wrong password!")
            statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429]
    assert int(response.headers["Retry-After"]) >= 1


def test_logout_revokes_the_token(api, user):
    assert api.get("/me", headers=user["headers"]).status_code == 200
    assert api.post("/auth/logout", headers=user["headers"]).status_code == 204
    assert api.get("/me", headers=user["headers"]).status_code == 401


def forged(claims_update: dict, key: str, algorithm: str = "HS256") -> str:
    now = int(time.time())
    claims = {"sub": "nobody", "iat": now, "nbf": now, "exp": now + 600, "iss": "ray-jobs",
              "aud": "ray-jobs-api", "jti": uuid.uuid4().hex}
    claims.update(claims_update)
    return jwt.encode(claims, key, algorithm=algorithm)


def test_bad_tokens_all_get_the_same_401(api, user, ray_session):
    secret = ray_session["JWT_SECRET"]
    user_id = api.get("/me", headers=user["headers"]).json()["user_id"]
    good = user["headers"]["Authorization"].split()[1]
    header, payload, signature = good.split(".")
    unsigned = jwt.encode({"sub": user_id}, None, algorithm="none")
    cases = {
        "malformed": "not.a.jwt",
        "garbage": "x" * 50,
        "tampered": f"{header}.{payload}.{signature[:-3]}abc",
        "alg none": unsigned,
        "expired": forged({"sub": user_id, "exp": int(time.time()) - 600, "iat": int(time.time()) - 1200,
                           "nbf": int(time.time()) - 1200}, secret),
        "not yet valid": forged({"sub": user_id, "nbf": int(time.time()) + 600}, secret),
        "wrong audience": forged({"sub": user_id, "aud": "someone-else"}, secret),
        "wrong issuer": forged({"sub": user_id, "iss": "evil"}, secret),
        "wrong key": forged({"sub": user_id}, "another-secret-" + "y" * 40),
        "unknown user": forged({"sub": "no-such-user"}, secret),
        "unknown api token": "rjt_" + "A" * 43,
    }
    for name, token in cases.items():
        response = api.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json() == {"detail": "Not authenticated."}, name
        assert response.headers["WWW-Authenticate"] == "Bearer", name
    assert api.get("/me", headers={"Authorization": f"Basic {good}"}).status_code == 401
    assert api.get("/me", headers={"Authorization": "Bearer"}).status_code == 401


def test_api_tokens_work_everywhere_and_revoke_at_once(api, user):
    created = api.post("/me/tokens", json={"name": "ci"}, headers=user["headers"])
    assert created.status_code == 201
    token = created.json()
    assert token["token"].startswith("rjt_") and token["name"] == "ci" and token["last_used_at"] is None
    bearer = {"Authorization": f"Bearer {token['token']}"}
    job = api.post("/jobs", json={"n": 10, "chunks": 1}, headers=bearer)
    assert job.status_code == 202
    assert api.get(f"/jobs/{job.json()['job_id']}", headers=user["headers"]).status_code == 200
    listed = api.get("/me/tokens", headers=user["headers"]).json()
    assert [t["id"] for t in listed] == [token["id"]]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is not None
    assert api.delete(f"/me/tokens/{token['id']}", headers=user["headers"]).status_code == 204
    assert api.get("/me", headers=bearer).status_code == 401
    assert api.delete(f"/me/tokens/{token['id']}", headers=user["headers"]).status_code == 404


def test_api_tokens_are_private_to_their_user(api, user):
    token_id = api.post("/me/tokens", json={"name": "mine"}, headers=user["headers"]).json()["id"]
    email = new_email()
    register(api, email)
    other = {"Authorization": f"Bearer {login(api, email).json()['access_token']}"}
    assert api.get("/me/tokens", headers=other).json() == []
    assert api.delete(f"/me/tokens/{token_id}", headers=other).status_code == 404


@pytest.mark.parametrize("name", ["", "   ", "a" * 65, "bad\u0007name", "line\nbreak"])
def test_token_names_are_validated(api, user, name):
    response = api.post("/me/tokens", json={"name": name}, headers=user["headers"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"


def test_cookie_session_needs_csrf_for_writes(api):
    email = new_email()
    register(api, email)
    response = api.post("/auth/session", json={"email": email, "password": "long enough pw"})
    assert response.status_code == 200
    cookie_header = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookie_header if c.startswith("session="))
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    csrf = api.cookies["csrf_token"]
    assert api.get("/me").json()["email"] == email
    assert api.post("/jobs", json={"n": 10, "chunks": 1}).status_code == 401
    assert api.post("/jobs", json={"n": 10, "chunks": 1}, headers={"X-CSRF-Token": "wrong"}).status_code == 401
    assert api.post("/jobs", json={"n": 10, "chunks": 1}, headers={"X-CSRF-Token": csrf}).status_code == 202
    assert api.delete("/auth/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    api.cookies.clear()
    assert api.get("/me").status_code == 401


def test_revoked_session_token_stops_working(api):
    email = new_email()
    register(api, email)
    api.post("/auth/session", json={"email": email, "password": "long enough pw"})
    session = api.cookies["session"]
    api.delete("/auth/session", headers={"X-CSRF-Token": api.cookies["csrf_token"]})
    assert api.get("/me", headers={"Authorization": f"Bearer {session}"}).status_code == 401


def test_deleted_account_tokens_stop_working(api, user):
    api_token = api.post("/me/tokens", json={"name": "gone"}, headers=user["headers"]).json()["token"]
    assert api.delete("/me", headers=user["headers"]).status_code == 204
    assert api.get("/me", headers=user["headers"]).status_code == 401
    assert api.get("/me", headers={"Authorization": f"Bearer {api_token}"}).status_code == 401
    assert login(api, user["email"], user["password"]).status_code == 401


def test_unknown_email_and_wrong_password_take_the_same_time(base_url):
    """The unknown-email path burns one Argon2 verification, so timing does not reveal accounts."""
    import statistics

    import httpx

    from tests.conftest import fresh_ip

    emails = [new_email() for _ in range(4)]
    with httpx.Client(base_url=base_url, headers={"X-Forwarded-For": fresh_ip()}) as client:
        for email in emails:
            register(client, email)

    def timed(email: str) -> float:
        with httpx.Client(base_url=base_url, headers={"X-Forwarded-For": fresh_ip()}) as client:
            started = time.perf_counter()
            assert login(client, email, "definitely wrong").status_code == 401
            return time.perf_counter() - started

    wrong, unknown = [], []
    for _ in range(3):
        for email in emails:
            wrong.append(timed(email))
            unknown.append(timed(new_email()))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.6 < ratio < 1.6, (statistics.median(unknown), statistics.median(wrong))
