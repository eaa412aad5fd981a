"""Tokens from an external OpenID provider (RS256, verified against its JWKS) work end to end."""

import time
import uuid

import jwt

from tests.support.jobs import wait_for_job


def provider_token(identity_provider, sub="idp|grace", **claims) -> str:
    now = int(time.time())
    payload = {"sub": sub, "iat": now, "exp": now + 300, "iss": "ray-jobs", "aud": "ray-jobs-api", **claims}
    return jwt.encode(payload, identity_provider["key"], algorithm="RS256",
                      headers={"kid": identity_provider["kid"]})


def test_external_user_can_submit_and_list_jobs(api, identity_provider):
    headers = {"Authorization": f"Bearer {provider_token(identity_provider)}"}
    me = api.get("/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["user_id"] == "ext:idp|grace"
    job = api.post("/jobs", json={"n": 100, "chunks": 2}, headers=headers)
    assert job.status_code == 202
    assert job.json()["job_id"] in [j["job_id"] for j in api.get("/jobs", headers=headers).json()["items"]]


def test_external_tokens_with_bad_claims_or_keys_are_refused(api, identity_provider, ray_session):
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    cases = {
        "wrong audience": provider_token(identity_provider, aud="elsewhere"),
        "expired": provider_token(identity_provider, exp=now - 300, iat=now - 600),
        "unknown signer": jwt.encode({"sub": "x", "exp": now + 300, "iss": "ray-jobs", "aud": "ray-jobs-api"},
                                     stranger, algorithm="RS256", headers={"kid": identity_provider["kid"]}),
    }
    for name, token in cases.items():
        response = api.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name


def test_external_users_api_token_works_until_deleted(api, identity_provider):
    """An external user's API token authenticates as that user (no local record needed) until revoked."""
    sub = f"idp|{uuid.uuid4().hex[:12]}"
    provider = {"Authorization": f"Bearer {provider_token(identity_provider, sub=sub)}"}
    created = api.post("/me/tokens", json={"name": "ci"}, headers=provider)
    assert created.status_code == 201, created.text
    token_id, secret = created.json()["id"], created.json()["token"]
    headers = {"Authorization": f"Bearer {secret}"}

    me = api.get("/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == f"ext:{sub}"
    submitted = api.post("/jobs", json={"n": 100, "chunks": 2}, headers=headers)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    job = wait_for_job(api, f"/jobs/{job_id}", headers=headers)
    assert job["status"] == "completed" and job["result"] == 100 * 101 // 2
    # the same owner whichever credential is used
    assert api.get(f"/jobs/{job_id}", headers=provider).status_code == 200
    assert job_id in [j["job_id"] for j in api.get("/jobs", headers=headers).json()["items"]]

    listed = api.get("/me/tokens", headers=headers)
    assert listed.status_code == 200
    [row] = [t for t in listed.json() if t["id"] == token_id]
    assert row["name"] == "ci" and row["last_used_at"] is not None and "token" not in row
    # the account lives at the provider: not deletable here, whichever credential asks
    refused = api.delete("/me", headers=headers)
    assert refused.status_code == 409, refused.text
    assert api.get("/me", headers=headers).status_code == 200

    assert api.delete(f"/me/tokens/{token_id}", headers=headers).status_code == 204
    for method, path in [("GET", "/me"), ("GET", f"/jobs/{job_id}"), ("POST", "/jobs"), ("GET", "/me/tokens")]:
        response = api.request(method, path, json={"n": 10, "chunks": 1} if method == "POST" else None,
                               headers=headers)
        assert response.status_code == 401, (method, path, response.text)
    assert api.get(f"/jobs/{job_id}", headers=provider).status_code == 200  # the provider's token still works
    assert token_id not in [t["id"] for t in api.get("/me/tokens", headers=provider).json()]


def test_another_external_users_token_cannot_be_deleted(api, identity_provider):
    owner = {"Authorization": f"Bearer {provider_token(identity_provider, sub=f'idp|{uuid.uuid4().hex[:12]}')}"}
    other = {"Authorization": f"Bearer {provider_token(identity_provider, sub=f'idp|{uuid.uuid4().hex[:12]}')}"}
    created = api.post("/me/tokens", json={"name": "mine"}, headers=owner).json()
    assert api.delete(f"/me/tokens/{created['id']}", headers=other).status_code == 404
    assert api.get("/me", headers={"Authorization": f"Bearer {created['token']}"}).status_code == 200
