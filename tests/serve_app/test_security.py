"""Unit tests for serve_app.security: passwords, local and external JWTs, API tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cluster.ports import free_port
from serve_app import security
from serve_app.security import (
    API_TOKEN_PREFIX,
    InvalidToken,
    TokenClaims,
    burn_verify_time,
    create_access_token,
    decode_access_token,
    hash_api_token,
    hash_password,
    looks_like_api_token,
    make_jwks_client,
    new_api_token,
    verify_password,
)
from serve_app.settings import Settings
from tests.support.jwks import JwksServer, jwk

SECRET = "test-secret-" + "x" * 40
ISSUER = "ray-jobs-test"
AUDIENCE = "ray-jobs-api-test"


def make_settings(**overrides) -> Settings:
    values = dict(
        environment="test", jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_expire_minutes=15
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def local_claims(**overrides) -> dict:
    now = int(time.time())
    claims = {"sub": "user-1", "exp": now + 600, "iat": now, "nbf": now, "iss": ISSUER, "aud": AUDIENCE,
              "jti": uuid.uuid4().hex}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def hs256(claims: dict, key: bytes | str = SECRET, header: dict | None = None) -> str:
    """Build an HS256 token by hand (PyJWT refuses PEM keys for HMAC, an attacker does not)."""
    key = key.encode() if isinstance(key, str) else key
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


# -- passwords --------------------------------------------------------------------------


def test_hash_and_verify_roundtrip():
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery staple")
    assert not verify_password(stored, "correct horse battery stapl")
    assert hash_password("same") != hash_password("same")  # salted


def test_verify_password_never_raises_on_bad_hash():
    assert verify_password("not-a-hash", "pw") is False
    assert verify_password("", "pw") is False
    assert verify_password("$argon2id$v=19$m=1,t=1,p=1$xx$yy", "pw") is False
    assert verify_password(None, "pw") is False  # type: ignore[arg-type]


def test_hashes_made_with_other_parameters_keep_verifying():
    legacy = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw")
    assert verify_password(legacy, "pw")
    assert not verify_password(legacy, "other")


def test_burn_verify_time_costs_what_a_failed_verification_costs():
    """Its purpose: a login for an unknown email must take as long as a wrong password (no user
    enumeration by timing), so it must do one real Argon2 verification with the current parameters."""
    stored = hash_password("the real password")
    assert security._DUMMY_HASH.split("$")[3] == stored.split("$")[3]  # same m, t, p as real hashes

    def median_seconds(call) -> float:
        times = []
        for _ in range(7):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    wrong_password = median_seconds(lambda: verify_password(stored, "a wrong password"))
    burned = median_seconds(lambda: burn_verify_time("a wrong password"))
    assert wrong_password > 0.005  # Argon2 at these parameters: tens of ms, not a no-op
    assert 0.6 * wrong_password < burned < 1.6 * wrong_password, (burned, wrong_password)


# -- local tokens -----------------------------------------------------------------------


def test_create_decode_roundtrip(settings):
    token, expires_in, claims = create_access_token(settings, "user-42")
    assert expires_in == 15 * 60
    assert claims.sub == "user-42" and claims.source == "local"
    assert claims.jti and len(claims.jti) == 32
    assert abs(claims.exp - (time.time() + expires_in)) < 5
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert "kid" not in jwt.get_unverified_header(token)
    decoded = decode_access_token(settings, token)
    assert decoded == claims
    assert isinstance(decoded, TokenClaims)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"sub", "exp", "iat", "nbf", "iss", "aud", "jti"}


def test_each_token_gets_a_new_jti(settings):
    assert create_access_token(settings, "u")[2].jti != create_access_token(settings, "u")[2].jti


def test_create_requires_secret():
    with pytest.raises(ValueError):
        create_access_token(make_settings(jwt_secret=""), "user-1")


def test_empty_secret_rejects_every_local_token():
    empty = make_settings(jwt_secret="")
    with pytest.raises(InvalidToken):
        decode_access_token(empty, hs256(local_claims(), key=b""))


def test_valid_hand_built_token_is_accepted(settings):
    # sanity check for the helper used by the negative cases below
    assert decode_access_token(settings, hs256(local_claims(sub="abc"))).sub == "abc"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(local_claims(exp=int(time.time()) - 120), id="expired"),
        pytest.param(local_claims(nbf=int(time.time()) + 3600), id="nbf-in-future"),
        pytest.param(local_claims(iat=int(time.time()) + 3600), id="iat-in-future"),
        pytest.param(local_claims(iss="someone-else"), id="wrong-iss"),
        pytest.param(local_claims(aud="other-api"), id="wrong-aud"),
        pytest.param(local_claims(jti=None), id="missing-jti"),
        pytest.param(local_claims(exp=None), id="missing-exp"),
        pytest.param(local_claims(iat=None), id="missing-iat"),
        pytest.param(local_claims(sub=None), id="missing-sub"),
        pytest.param(local_claims(iss=None), id="missing-iss"),
        pytest.param(local_claims(aud=None), id="missing-aud"),
        pytest.param(local_claims(sub=""), id="empty-sub"),
        pytest.param(local_claims(sub=123), id="non-string-sub"),
        pytest.param(local_claims(jti=""), id="empty-jti"),
        pytest.param(local_claims(exp="soon"), id="non-numeric-exp"),
    ],
)
def test_bad_claims_are_rejected(settings, claims):
    with pytest.raises(InvalidToken):
        decode_access_token(settings, hs256(claims))


def test_small_clock_skew_is_tolerated(settings):
    token = hs256(local_claims(nbf=int(time.time()) + 3, iat=int(time.time()) + 3))
    assert decode_access_token(settings, token).source == "local"


def test_alg_none_is_rejected(settings):
    unsigned = jwt.encode(local_claims(), None, algorithm="none")
    with pytest.raises(InvalidToken):
        decode_access_token(settings, unsigned)
    head = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64url(json.dumps(local_claims()).encode())
    for crafted in (f"{head}.{body}.", f"{head}.{body}"):
        with pytest.raises(InvalidToken):
            decode_access_token(settings, crafted)


def test_tampered_token_is_rejected(settings):
    token, _, _ = create_access_token(settings, "user-1")
    head, body, sig = token.split(".")
    forged_body = b64url(json.dumps(local_claims(sub="admin")).encode())
    with pytest.raises(InvalidToken):
        decode_access_token(settings, f"{head}.{forged_body}.{sig}")
    bad_sig = b64url(bytes(b ^ 1 for b in base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))))
    with pytest.raises(InvalidToken):
        decode_access_token(settings, f"{head}.{body}.{bad_sig}")


def test_token_signed_with_other_secret_is_rejected(settings):
    token, _, _ = create_access_token(make_settings(jwt_secret="another-secret-" + "y" * 40), "user-1")
    with pytest.raises(InvalidToken):
        decode_access_token(settings, token)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b", "....", "e30.e30.", "!!!.???.###", "x" * 20000, None, 123, b"bytes.not.str"],
)
def test_malformed_tokens_are_rejected(settings, token):
    with pytest.raises(InvalidToken):
        decode_access_token(settings, token)


def test_invalid_token_carries_no_detail(settings):
    with pytest.raises(InvalidToken) as info:
        decode_access_token(settings, hs256(local_claims(exp=1)))
    assert str(info.value) == "invalid token"
    assert info.value.__cause__ is None and info.value.__suppress_context__


# -- external tokens (JWKS) -------------------------------------------------------------


@pytest.fixture(scope="module")
def keys():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return {"rsa": rsa_key, "other_rsa": other_rsa_key, "ec": ec_key}


OCT_KEY = b"shared-symmetric-key-in-the-jwks-" + b"z" * 16


@pytest.fixture(scope="module")
def jwks_url(keys):
    jwks = {
        "keys": [
            jwk(keys["rsa"].public_key(), "rsa-1", "RS256"),
            jwk(keys["ec"].public_key(), "ec-1", "ES256"),
            {"kty": "oct", "kid": "oct-1", "alg": "HS256", "use": "sig", "k": b64url(OCT_KEY)},
        ]
    }
    server = JwksServer(jwks).start()
    yield server.url
    server.stop()


@pytest.fixture
def jwks_client(jwks_url):
    return make_jwks_client(jwks_url)


def external_claims(**overrides) -> dict:
    now = int(time.time())
    claims = {"sub": "idp|alice", "exp": now + 600, "iat": now, "iss": ISSUER, "aud": AUDIENCE}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def rs256(keys, claims: dict, kid: str | None = "rsa-1", key: str = "rsa") -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, keys[key], algorithm="RS256", headers=headers)


def es256(keys, claims: dict, kid: str = "ec-1") -> str:
    return jwt.encode(claims, keys["ec"], algorithm="ES256", headers={"kid": kid})


def test_make_jwks_client_settings(jwks_url):
    client = make_jwks_client(jwks_url)
    assert isinstance(client, jwt.PyJWKClient)
    assert client.timeout == 5
    assert client.jwk_set_cache is not None and client.jwk_set_cache.lifespan == 300
    with pytest.raises(ValueError):
        make_jwks_client("file:///etc/passwd")


def test_external_rs256_token(settings, keys, jwks_client):
    claims = decode_access_token(settings, rs256(keys, external_claims(jti="ext-jti")), jwks_client)
    assert claims == TokenClaims(sub="idp|alice", jti="ext-jti", exp=claims.exp, source="external")


def test_external_es256_token_without_jti(settings, keys, jwks_client):
    claims = decode_access_token(settings, es256(keys, external_claims()), jwks_client)
    assert claims.source == "external" and claims.sub == "idp|alice" and claims.jti is None
    assert isinstance(claims.exp, int)


def test_local_token_still_accepted_with_jwks_client(settings, jwks_client):
    token, _, issued = create_access_token(settings, "user-7")
    assert decode_access_token(settings, token, jwks_client) == issued


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(external_claims(exp=int(time.time()) - 120), id="expired"),
        pytest.param(external_claims(nbf=int(time.time()) + 3600), id="nbf-in-future"),
        pytest.param(external_claims(iss="https://evil.example"), id="wrong-iss"),
        pytest.param(external_claims(aud="other-api"), id="wrong-aud"),
        pytest.param(external_claims(exp=None), id="missing-exp"),
        pytest.param(external_claims(sub=None), id="missing-sub"),
    ],
)
def test_external_bad_claims_are_rejected(settings, keys, jwks_client, claims):
    with pytest.raises(InvalidToken):
        decode_access_token(settings, rs256(keys, claims), jwks_client)


def test_external_unknown_kid_is_rejected(settings, keys, jwks_client):
    with pytest.raises(InvalidToken):
        decode_access_token(settings, rs256(keys, external_claims(), kid="no-such-kid"), jwks_client)


def test_external_missing_kid_is_rejected(settings, keys, jwks_client):
    with pytest.raises(InvalidToken):
        decode_access_token(settings, rs256(keys, external_claims(), kid=None), jwks_client)


def test_external_key_not_in_jwks_is_rejected(settings, keys, jwks_client):
    # signed by a key the issuer never published, but claiming a published kid
    forged = rs256(keys, external_claims(), kid="rsa-1", key="other_rsa")
    with pytest.raises(InvalidToken):
        decode_access_token(settings, forged, jwks_client)


def test_external_kid_of_a_key_with_another_algorithm_is_rejected(settings, keys, jwks_client):
    with pytest.raises(InvalidToken):
        decode_access_token(settings, rs256(keys, external_claims(), kid="ec-1"), jwks_client)


def test_external_tampered_payload_is_rejected(settings, keys, jwks_client):
    head, _, sig = rs256(keys, external_claims()).split(".")
    body = b64url(json.dumps(external_claims(sub="idp|admin")).encode())
    with pytest.raises(InvalidToken):
        decode_access_token(settings, f"{head}.{body}.{sig}", jwks_client)


def test_external_alg_none_with_kid_is_rejected(settings, jwks_client):
    head = b64url(json.dumps({"alg": "none", "kid": "rsa-1"}).encode())
    body = b64url(json.dumps(external_claims()).encode())
    with pytest.raises(InvalidToken):
        decode_access_token(settings, f"{head}.{body}.", jwks_client)


def test_symmetric_key_from_jwks_is_never_used(settings, jwks_client):
    token = hs256(external_claims(jti="j"), key=OCT_KEY, header={"alg": "HS256", "kid": "oct-1"})
    with pytest.raises(InvalidToken):
        decode_access_token(settings, token, jwks_client)


def test_jwks_server_down_is_invalid_token(settings, keys):
    client = make_jwks_client(f"http://127.0.0.1:{free_port()}/jwks.json")
    with pytest.raises(InvalidToken):
        decode_access_token(settings, rs256(keys, external_claims()), client)


def test_rs256_token_without_jwks_client_is_rejected(settings, keys):
    # never verified on the HS path with the secret
    with pytest.raises(InvalidToken):
        decode_access_token(settings, rs256(keys, local_claims()))
    with pytest.raises(InvalidToken):
        decode_access_token(settings, es256(keys, local_claims()))


# -- HS/RS confusion --------------------------------------------------------------------


def test_hs256_token_signed_with_rsa_public_key_is_rejected(settings, keys, jwks_client):
    public_pem = keys["rsa"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_json = json.dumps(jwk(keys["rsa"].public_key(), "rsa-1", "RS256")).encode()
    for key in (public_pem, jwk_json):
        for header in ({"alg": "HS256", "typ": "JWT"}, {"alg": "HS256", "kid": "rsa-1"}):
            token = hs256(local_claims(), key=key, header=header)
            with pytest.raises(InvalidToken):
                decode_access_token(settings, token)
            with pytest.raises(InvalidToken):
                decode_access_token(settings, token, jwks_client)


def test_hs256_token_with_public_pem_as_secret_is_still_rejected_on_external_path(keys, jwks_client):
    # even if an operator set JWT_SECRET to the public key, a kid-bearing HS256 token goes to the
    # external path, where HS256 is not allowed
    public_pem = keys["rsa"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = make_settings(jwt_secret=public_pem.decode())
    token = hs256(local_claims(), key=public_pem, header={"alg": "HS256", "kid": "rsa-1"})
    with pytest.raises(InvalidToken):
        decode_access_token(settings, token, jwks_client)
    # and PyJWT refuses a PEM-shaped HMAC key on the local path too
    with pytest.raises(InvalidToken):
        decode_access_token(settings, hs256(local_claims(), key=public_pem))


# -- API tokens -------------------------------------------------------------------------


def test_new_api_token_format_and_hash():
    secret, digest = new_api_token()
    assert API_TOKEN_PREFIX == "rjt_"
    assert secret.startswith("rjt_") and len(secret) == 4 + 43
    assert digest == hashlib.sha256(secret.encode()).hexdigest() == hash_api_token(secret)
    assert len(digest) == 64
    assert looks_like_api_token(secret)
    other_secret, other_digest = new_api_token()
    assert other_secret != secret and other_digest != digest


@pytest.mark.parametrize(
    "value",
    ["", "rjt_", "rjt_short", "rjt_" + "a" * 42, "rjt_" + "a" * 44, "rjt_" + "a" * 42 + "=", "RJT_" + "a" * 43,
     "eyJhbGciOiJIUzI1NiJ9.e30.sig", None, 42],
)
def test_looks_like_api_token_rejects(value):
    assert not looks_like_api_token(value)


def test_jwt_does_not_look_like_api_token(settings):
    token, _, _ = create_access_token(settings, "user-1")
    assert not looks_like_api_token(token)
