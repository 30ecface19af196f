"""JWS compact signatures over the policy document (EdDSA with Ed25519, ES256 with P-256).

Verification is done with `cryptography` directly, so the accepted algorithms
are exactly these two and every key is bound to its algorithm: `alg: none`,
HS256 with a public key used as the HMAC secret, and an EdDSA header over an
EC key are all refused by construction. `cryptography` is imported lazily.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp_proxy.errors import PolicyError
from mcp_proxy.policy.jsondepth import MAX_DEPTH, too_deep

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    # The keys a policy can be signed with: Ed25519 (EdDSA) and EC P-256 (ES256).
    SigningPublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
    SigningPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

ALGORITHMS = ("EdDSA", "ES256")
_COMPACT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$")


class SignatureError(PolicyError):
    """The document's signature is missing, malformed or not made by a configured key."""


class KeyProblem(PolicyError, ValueError):
    """A configured or given key cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class VerifyKey:
    key_id: str  # "sha256:<16 hex>" of the SubjectPublicKeyInfo
    alg: str
    key: SigningPublicKey


@dataclass(frozen=True)
class Verified:
    payload: bytes
    key_id: str
    alg: str


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_jws(raw: bytes) -> bool:
    try:
        return bool(_COMPACT_RE.match(raw.decode("ascii").strip()))
    except UnicodeDecodeError:
        return False


def _key_id(public_key: PublicKeyTypes) -> str:
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def _alg_for(public_key: PublicKeyTypes) -> str:
    return _signing_key(public_key)[0]


def _signing_key(public_key: PublicKeyTypes) -> tuple[str, SigningPublicKey]:
    """The JWS algorithm the key is bound to, and the key; KeyProblem for a key that cannot sign policies."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA", public_key
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1":
        return "ES256", public_key
    raise KeyProblem(f"a {type(public_key).__name__} key cannot sign policies; use an Ed25519 key (EdDSA) "
                    "or an EC P-256 key (ES256), e.g. from `mcp-access-proxy policy keygen`")


def _from_jwk(data: dict[str, Any]) -> SigningPublicKey:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    kty, crv = data.get("kty"), data.get("crv")
    if kty == "OKP" and crv == "Ed25519" and isinstance(data.get("x"), str):
        return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(data["x"]))
    if kty == "EC" and crv == "P-256" and isinstance(data.get("x"), str) and isinstance(data.get("y"), str):
        x = int.from_bytes(b64url_decode(data["x"]), "big")
        y = int.from_bytes(b64url_decode(data["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    raise KeyProblem('a JWK must be {"kty": "OKP", "crv": "Ed25519", "x": ...} or '
                    '{"kty": "EC", "crv": "P-256", "x": ..., "y": ...}')


def load_public_key(text: str, where: str = "public key") -> VerifyKey:
    """A PEM (SubjectPublicKeyInfo) or JWK public key."""
    from cryptography.hazmat.primitives import serialization

    stripped = text.strip()
    public_key: PublicKeyTypes
    try:
        if stripped.startswith("{"):
            public_key = _from_jwk(json.loads(stripped))
        elif "-----BEGIN" in stripped:
            if "PRIVATE KEY" in stripped:
                raise KeyProblem(f"{where} is a PRIVATE key; configure the PUBLIC key (the .pub.pem file) and keep "
                                "the private key with the administrator")
            public_key = serialization.load_pem_public_key(stripped.encode())
        else:
            raise KeyProblem(f"{where} is neither a PEM public key (-----BEGIN PUBLIC KEY-----) nor a JWK object")
    except KeyProblem:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad key
        raise KeyProblem(f"{where} cannot be read ({type(exc).__name__}); paste the whole PEM block or JWK") from None
    alg, key = _signing_key(public_key)
    return VerifyKey(_key_id(key), alg, key)


def load_public_keys(texts: tuple[str, ...] | list[str]) -> list[VerifyKey]:
    return [load_public_key(t, f"policy.public_keys[{i}]") for i, t in enumerate(texts)]


def _verify_one(key: VerifyKey, signing_input: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    try:
        if isinstance(key.key, ed25519.Ed25519PublicKey):  # alg EdDSA: the key was bound to it when loaded
            key.key.verify(signature, signing_input)
        else:
            if len(signature) != 64:  # JWS ES256 signatures are raw r || s, 32 bytes each
                return False
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def decode_unverified(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """The protected header and payload of a compact JWS, without checking the signature."""
    try:
        header_b64, payload_b64, _ = raw.decode("ascii").strip().split(".")
        header_text = b64url_decode(header_b64).decode("utf-8")
        if too_deep(header_text) is not None:  # json.loads would raise RecursionError
            raise SignatureError(f"the JWS header is nested more than {MAX_DEPTH} levels deep, so it is not a JWS "
                                 "header; sign the document again with `mcp-access-proxy policy sign`")
        header = json.loads(header_text)
        payload = b64url_decode(payload_b64)
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("the document looks like a JWS but its parts are not valid base64url/JSON; "
                             "sign it again with `mcp-access-proxy policy sign`") from None
    if not isinstance(header, dict):
        raise SignatureError("the JWS header is not a JSON object; sign the document again")
    return header, payload


def verify_jws(raw: bytes, keys: list[VerifyKey]) -> Verified:
    """The payload of a compact JWS signed by one of `keys`, or SignatureError."""
    if not is_jws(raw):
        raise SignatureError("the document is not signed, but [policy] public_keys are configured, so only a JWS "
                             "signed by one of them is accepted; the administrator signs it with "
                             "`mcp-access-proxy policy sign FILE --key KEY`")
    header, payload = decode_unverified(raw)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise SignatureError(f"the JWS algorithm {json.dumps(alg)} is not accepted; only EdDSA and ES256 are "
                             "(sign with an Ed25519 or P-256 key)")
    if "crit" in header or header.get("b64") is False:
        raise SignatureError("the JWS uses extensions (crit/b64) this proxy does not support; sign it again "
                             "with `mcp-access-proxy policy sign`")
    if not payload:
        raise SignatureError("the JWS has a detached (empty) payload; embed the policy JSON in the JWS")
    header_b64, payload_b64, sig_b64 = raw.decode("ascii").strip().split(".")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    try:
        signature = b64url_decode(sig_b64)
    except ValueError:
        raise SignatureError("the JWS signature is not valid base64url; sign the document again") from None
    for key in keys:
        if key.alg == alg and _verify_one(key, signing_input, signature):
            return Verified(payload, key.key_id, alg)
    kid = header.get("kid")
    hint = f" (it names key {kid})" if isinstance(kid, str) and len(kid) < 80 else ""
    raise SignatureError(f"the signature does not verify with any configured public key{hint}: either the "
                         "document was changed after signing or it was signed by a key not in [policy] public_keys")


def load_private_key(pem: bytes) -> SigningPrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except Exception as exc:  # noqa: BLE001 - wrong format, encrypted, not a key
        raise KeyProblem(f"the signing key cannot be read ({type(exc).__name__}); give an unencrypted PEM private "
                        "key (Ed25519 or EC P-256), e.g. from `mcp-access-proxy policy keygen`") from None
    _alg_for(key.public_key())  # KeyProblem for a key of another kind or curve
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):  # not reached: checked above
        raise KeyProblem(f"a {type(key).__name__} key cannot sign policies")
    return key


def sign_jws(payload: bytes, private_key: SigningPrivateKey) -> str:
    """A compact JWS over `payload` with the algorithm the key implies, and its key id as `kid`."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    public = private_key.public_key()
    alg = _alg_for(public)
    header = {"alg": alg, "kid": _key_id(public), "typ": "mcp-policy+jws"}
    signing_input = f"{b64url_encode(json.dumps(header, separators=(',', ':')).encode())}.{b64url_encode(payload)}"
    if isinstance(private_key, ed25519.Ed25519PrivateKey):  # alg EdDSA
        signature = private_key.sign(signing_input.encode("ascii"))
    else:
        r, s = decode_dss_signature(private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input}.{b64url_encode(signature)}"


def generate_key_pair(alg: str = "EdDSA") -> tuple[bytes, bytes, str]:
    """(private PEM, public PEM, key id) for a new Ed25519 (EdDSA) or P-256 (ES256) key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if alg == "EdDSA":
        key: SigningPrivateKey = ed25519.Ed25519PrivateKey.generate()
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise KeyProblem(f"unknown algorithm {alg!r}; use EdDSA or ES256")
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_pem, public_pem, _key_id(key.public_key())
