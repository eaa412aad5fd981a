"""Tokens from an external OpenID provider (RS256, verified against its JWKS) work end to end."""

import time

import jwt


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
