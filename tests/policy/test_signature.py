"""JWS verification: only EdDSA/ES256 by a configured key; everything else is refused."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from mcp_proxy.policy.signature import (
    KeyProblem,
    SignatureError,
    b64url_encode,
    load_public_key,
    load_public_keys,
    verify_jws,
)
from tests._support.policy_docs import make_doc

PAYLOAD = json.dumps(make_doc()).encode()


def test_eddsa_and_es256_verify_and_name_the_key(keys):
    configured = load_public_keys([keys.ed_public, keys.es_public])
    for private, index in ((keys.ed_private, 0), (keys.es_private, 1)):
        verified = verify_jws(keys.sign(PAYLOAD, private), configured)
        assert verified.payload == PAYLOAD and verified.key_id == configured[index].key_id


def test_jwk_public_keys(keys):
    from cryptography.hazmat.primitives import serialization

    ed = serialization.load_pem_public_key(keys.ed_public.encode())
    raw = ed.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = json.dumps({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)})
    es = serialization.load_pem_public_key(keys.es_public.encode()).public_numbers()
    es_jwk = json.dumps({"kty": "EC", "crv": "P-256", "x": b64url_encode(es.x.to_bytes(32, "big")),
                         "y": b64url_encode(es.y.to_bytes(32, "big"))})
    assert load_public_key(jwk).key_id == load_public_key(keys.ed_public).key_id
    assert verify_jws(keys.sign(PAYLOAD, keys.es_private), [load_public_key(es_jwk)]).payload == PAYLOAD


def test_wrong_key_is_refused(keys):
    with pytest.raises(SignatureError, match="does not verify"):
        verify_jws(keys.sign(PAYLOAD, keys.other_private), load_public_keys([keys.ed_public]))


def test_tampered_payload_is_refused(keys):
    header, _, sig = keys.sign(PAYLOAD).decode().split(".")
    evil = json.loads(PAYLOAD)
    evil["tools"] = {"pd.delete_everything": {"state": "approved"}}
    token = f"{header}.{b64url_encode(json.dumps(evil).encode())}.{sig}".encode()
    with pytest.raises(SignatureError, match="changed after signing"):
        verify_jws(token, load_public_keys([keys.ed_public]))


def test_unsigned_document_is_refused_when_keys_are_configured(keys):
    with pytest.raises(SignatureError, match="not signed"):
        verify_jws(PAYLOAD, load_public_keys([keys.ed_public]))


def _token(header: dict, payload: bytes, signature: bytes = b"") -> bytes:
    return f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(payload)}.{b64url_encode(signature)}".encode()


def test_alg_none_is_refused(keys):
    with pytest.raises(SignatureError, match="not accepted"):
        verify_jws(_token({"alg": "none"}, PAYLOAD), load_public_keys([keys.ed_public]))


def test_hs256_with_the_public_key_as_secret_is_refused(keys):
    header = {"alg": "HS256"}
    signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(PAYLOAD)}".encode()
    mac = hmac.new(keys.ed_public.encode(), signing_input, hashlib.sha256).digest()
    with pytest.raises(SignatureError, match="not accepted"):
        verify_jws(_token(header, PAYLOAD, mac), load_public_keys([keys.ed_public]))


def test_algorithm_confusion_between_key_types_is_refused(keys):
    # An ES256 header over an Ed25519 signature: the EC key never sees it, the Ed25519 key is not ES256.
    _, payload, sig = keys.sign(PAYLOAD).decode().split(".")
    forged = f"{b64url_encode(json.dumps({'alg': 'ES256'}).encode())}.{payload}.{sig}".encode()
    with pytest.raises(SignatureError):
        verify_jws(forged, load_public_keys([keys.ed_public, keys.es_public]))


def test_crit_header_and_garbage_are_refused(keys):
    with pytest.raises(SignatureError, match="extensions"):
        verify_jws(_token({"alg": "EdDSA", "crit": ["exp"]}, PAYLOAD, b"x" * 64), load_public_keys([keys.ed_public]))
    with pytest.raises(SignatureError, match="base64url/JSON"):
        verify_jws(b"bm90.anNvbg.c2ln", load_public_keys([keys.ed_public]))


def test_bad_configured_keys_say_what_is_wrong(keys):
    with pytest.raises(KeyProblem, match="PRIVATE key"):
        load_public_key(keys.ed_private.decode())
    with pytest.raises(KeyProblem, match="neither a PEM"):
        load_public_key("ssh-ed25519 AAAA")
    with pytest.raises(KeyProblem, match="cannot be read"):
        load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
