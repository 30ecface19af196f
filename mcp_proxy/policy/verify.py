"""Bytes fetched or cached, made into a policy document that may be activated: its signature checked with the
configured keys first, then its schema. What is done with a checked document (activation, the high-water
mark, expiry) is the engine's (policy/engine.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NamedTuple

from mcp_proxy.errors import PolicyError
from mcp_proxy.policy.document import DocumentError, PolicyDocument, parse_document, parse_json

if TYPE_CHECKING:
    from mcp_proxy.policy.signature import VerifyKey

log = logging.getLogger(__name__)


class Rejected(PolicyError):
    """A document that must not be activated; the message says why."""


class Checked(NamedTuple):
    doc: PolicyDocument
    signed: bool
    signer: str | None  # the key id that verified the signature; None when no key checked it
    alg: str | None


class DocumentChecker:
    """Checks documents against `[policy] public_keys`. The keys are loaded at first use (`cryptography` is
    imported lazily); a key that cannot be used is left out, with a warning that status shows."""

    def __init__(self, public_keys: tuple[str, ...]) -> None:
        self._texts = public_keys
        self._keys: list[VerifyKey] | None = None
        self._warnings: list[str] = []

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self._warnings)

    def keys(self) -> list[VerifyKey]:
        if self._keys is None:
            from mcp_proxy.policy.signature import KeyProblem, load_public_key

            self._keys = []
            for i, text in enumerate(self._texts):
                try:
                    self._keys.append(load_public_key(text, f"policy.public_keys[{i}]"))
                except KeyProblem as exc:
                    self._warnings.append(str(exc))
                    log.warning("%s", exc)
        return self._keys

    def check(self, raw: bytes) -> Checked:
        """The document, or Rejected: signature, then schema."""
        from mcp_proxy.policy.signature import SignatureError, decode_unverified, is_jws, verify_jws

        signed, signer, alg = False, None, None
        try:
            if self._texts:
                keys = self.keys()
                if not keys:
                    raise Rejected("none of [policy] public_keys can be used (" + "; ".join(self._warnings)
                                   + "), so no document can be verified; fix the keys in the config")
                verified = verify_jws(raw, keys)
                payload, signed, signer, alg = verified.payload, True, verified.key_id, verified.alg
            elif is_jws(raw):
                # No keys configured: the signature cannot be checked, so it adds nothing; status says so.
                header, payload = decode_unverified(raw)
                signed, alg = True, str(header.get("alg"))
            else:
                payload = raw
            doc = parse_document(parse_json(payload))
        except SignatureError as exc:
            raise Rejected(str(exc)) from None
        except DocumentError as exc:
            more = f" (and {len(exc.problems) - 5} more)" if len(exc.problems) > 5 else ""
            shown = "; ".join(exc.problems[:5]) + more
            raise Rejected(f"the document is not a valid policy: {shown}; check it with "
                           "`mcp-access-proxy policy validate FILE`") from None
        return Checked(doc, signed, signer, alg)
