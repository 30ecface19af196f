"""Redaction: credentials never enter the audit log.

Applied to the call's arguments and to every other string of a record
(denial reasons, collector messages, policy texts):

1. Fields the policy (`tools[key].redact` / `.hash`) or the config (`[audit] redact_fields` /
   `hash_fields`, every tool) names. A bare name (`password`) matches that key at any depth; a dotted
   path (`payload.token`) matches from the top of the arguments, through lists. Matching ignores case.
   A redacted value becomes "[REDACTED]". A hashed value becomes "sha256:<64 hex>", the SHA-256 of the
   value's canonical JSON (sorted keys, no spaces, UTF-8): equal values give equal hashes, so an
   auditor can correlate calls or check "was it X?" by hashing X, without the log holding the value.
   It is not a secret-keeping device: a guessable value (a short number) can be found by trying
   candidates, so credentials belong in `redact`, not `hash`.
2. Keys that name a credential (password, pass, pw, passcode, passphrase, pin, otp, secret, token, api
   key, authorization, auth, cookie, credential(s), private key, access key, client secret, session id,
   bearer, routing/integration key), matched case-insensitively on the key's word parts (`db_pass`,
   `userPin`, `X-API-Key`; not `pinned`, `spinner`, `opinion`, `passenger`): their value, whatever its
   type (a number or a boolean too: `{"pin": 4321}`), becomes "[REDACTED]"; only null is kept.
   `max_tokens: 500` is kept: "tokens" is not "token".
3. Values equal to or containing a configured secret (the values of every `keyring:`/`env:` reference
   in the config, and those added at run time with `add_secret`, such as OAuth tokens): each occurrence
   becomes "[REDACTED]", in strings, in dict keys, and in numbers (`{"code": 84736251}` when 84736251 is
   a configured secret).
4. Token shapes anywhere in a string: `Bearer …`, `Basic …`, `Token token=…`, `GenieKey …`,
   `Splunk …`, JWTs (`eyJ….eyJ….…`), PagerDuty OAuth tokens (`pdus+_…`), UptimeObserver keys (`uo_…`),
   GitHub/Slack/OpenAI/AWS/Google key shapes, PEM private keys, the password of a URL
   (`postgresql://admin:[REDACTED]@db:5432`: scheme, user and host are kept), a value of 16+
   characters with a digit right after a credential word (`token 9f86d0…`, `api_key=…`,
   `password: …`), and long random-looking strings (32+ characters of letters, digits and `+_=-`
   mixing upper case, lower case and digits, switching between them often, with high character
   entropy: ~99% of random 32-character keys).

   Decision: bare hex strings and UUIDs are *kept* unless one of the rules above applies (a
   credential key, a credential word before them, a configured secret). They are the ordinary
   identifiers of this domain (Opsgenie alert ids are UUIDs, definition hashes are SHA-256 hex,
   PagerDuty dedup keys are often hashes), so redacting every one would make the log useless for
   the investigations it exists for; a hex token that travels without any of those markers is the
   one case this misses.

Numbers that are not finite (NaN, Infinity) become the strings "NaN", "Infinity", "-Infinity":
records are strict JSON. Strings longer than MAX_STRING characters are cut (the record says how much
was cut).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

REDACTED = "[REDACTED]"
MAX_STRING = 4096
MEMO_MAX_LEN = 256  # strings up to this long are remembered once scrubbed ...
MEMO_SIZE = 4096  # ... this many at most
MAX_DEPTH = 16
MAX_ITEMS = 200
MIN_SECRET_LEN = 6  # shorter configured "secrets" would redact ordinary words
MIN_TOKEN_LEN = 9  # the shortest token shape below (a URL's password: "x://u:p@h")
MIN_ADDED_SECRET = 8  # values added at run time (add_secret) shorter than this are ignored
MAX_ADDED_SECRETS = 64  # the newest run-time values kept (OAuth tokens rotate; the scrub loops over all)
ENTROPY_MIN = 3.8  # bits per character: random base62/base64url of 32+ characters scores 3.9-5
# Share of neighbouring characters that switch class (upper/lower/digit/other): ~0.62 for random
# characters, 0.28-0.42 for camelCase identifiers like "GetIncidentLogEntriesForServiceV2Beta".
SWITCH_MIN = 0.43

_SECRET_WORDS = frozenset({
    "password", "passwd", "passphrase", "passcode", "pass", "pwd", "pw", "pin", "otp", "totp", "secret",
    "secrets", "token", "apikey", "apitoken", "authorization", "auth", "cookie", "cookies", "credential",
    "credentials", "privatekey", "bearer", "sessionid", "accesstoken", "refreshtoken", "clientsecret",
    "xapikey",
})
_SECRET_PAIRS = frozenset({
    ("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("client", "secret"),
    ("session", "id"), ("set", "cookie"), ("routing", "key"), ("integration", "key"), ("service", "key"),
    ("signing", "key"), ("genie", "key"),
})
_WORD_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")

_TOKEN_PATTERN = (
    r"(?P<userinfo>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)[^\s/?#@]+(?=@)"
    r"|(?P<scheme>\b(?:Bearer|Basic|GenieKey|Splunk)\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|(?P<pdkey>\bToken\s+token=)[^\s\"',;]+"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)"
    r"|(?P<pdus>\bpdus\+_[A-Za-z0-9_+/=-]{8,})"
    r"|(?P<uo>\buo_[A-Za-z0-9_-]{16,})"
    r"|(?P<known>\b(?:gh[opusr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}))"
    r"|(?P<pem>-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))"
    r"|(?P<kv>\b(?i:(?:api|access|secret|auth|refresh|client|private)[_-]?(?:key|token|secret)|token|secret"
    r"|password|passwd|pwd|passphrase|passcode)\b[\"']?\s*[:=]?\s*[\"']?)[A-Za-z0-9+/_.=~-]{16,}"
    r"|(?P<long>[A-Za-z0-9+_=-]{32,})"
)


@functools.lru_cache(maxsize=1)
def _token_re() -> re.Pattern[str]:
    # Compiled on first use, not at import: the import is on serve's start-up path.
    return re.compile(_TOKEN_PATTERN)
_HEXISH = re.compile(r"[0-9a-fA-F-]+")


def secret_key(key: str, _cache: dict[str, bool] = {}) -> bool:  # noqa: B006 - a deliberate memo
    """Whether an argument or field name names a credential."""
    hit = _cache.get(key)
    if hit is None:
        words = [w.lower() for w in _WORD_RE.findall(key)]
        hit = any(w in _SECRET_WORDS for w in words) or any(p in _SECRET_PAIRS for p in itertools.pairwise(words))
        if len(_cache) > 4096:
            _cache.clear()
        _cache[key] = hit
    return hit


def _random_looking(s: str) -> bool:
    if _HEXISH.fullmatch(s):
        return False
    if not (any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s)):
        return False
    n = len(s)
    switches = sum(_class(a) != _class(b) for a, b in itertools.pairwise(s)) / (n - 1)
    if switches < SWITCH_MIN:
        return False
    entropy = -sum(c / n * math.log2(c / n) for c in Counter(s).values())
    return entropy >= ENTROPY_MIN


def _class(c: str) -> int:
    return 0 if c.isupper() else 1 if c.islower() else 2 if c.isdigit() else 3


def value_hash(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _rule_set(rules: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(bare names, dotted paths), lower-cased."""
    names: set[str] = set()
    paths: set[str] = set()
    for r in rules:
        (paths if "." in r else names).add(r.lower())
    return frozenset(names), frozenset(paths)


class Redactor:
    """Redacts arguments and scrubs strings. `secrets` is filled in once the config's values are known."""

    def __init__(self, redact_fields: Iterable[str] = (), hash_fields: Iterable[str] = ()) -> None:
        self._redact = _rule_set(redact_fields)
        self._hash = _rule_set(hash_fields)
        # The secret values (longest first), and what short strings scrubbed to under them: most of a record's
        # strings (tool, upstream, user, reason, ...) repeat on every call, and the token-shape regex is the
        # largest part of a record's cost. Replaced whole, never changed in place, so readers need no lock, and
        # together, as one tuple, so that a result found under the old secrets is never kept under the new ones.
        self._scrubbed: tuple[tuple[str, ...], dict[str, tuple[str, bool, bool]]] = ((), {})
        self._configured: frozenset[str] = frozenset()
        self._added: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
        self._lock = threading.Lock()

    def set_secrets(self, values: Iterable[str]) -> None:
        """The configured secret values (replacing earlier ones; values added with add_secret stay)."""
        unique = frozenset(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LEN)
        with self._lock:
            self._configured = unique
            self._publish()

    def add_secret(self, value: str) -> None:
        """Redact `value` from now on (a token obtained at run time). Thread-safe; values shorter than
        MIN_ADDED_SECRET are ignored; only the newest MAX_ADDED_SECRETS are kept."""
        if not isinstance(value, str) or len(value) < MIN_ADDED_SECRET:
            return
        with self._lock:
            if value in self._added or value in self._configured:
                return
            self._added[value] = None
            while len(self._added) > MAX_ADDED_SECRETS:
                del self._added[next(iter(self._added))]
            self._publish()

    def _publish(self) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._scrubbed = (tuple(sorted(self._configured | self._added.keys(), key=len, reverse=True)), {})

    # -- strings -----------------------------------------------------------------
    def scrub(self, text: str, notes: list[str] | None = None, where: str = "") -> str:
        """`text` with configured secrets and token shapes replaced."""
        if len(text) < MIN_SECRET_LEN:
            return text  # too short to hold a configured secret or any token shape
        secrets, memo = self._scrubbed
        known = memo.get(text) if len(text) <= MEMO_MAX_LEN else None
        if known is None:
            known = _scrub(text, secrets)
            if len(text) <= MEMO_MAX_LEN:
                if len(memo) >= MEMO_SIZE:
                    memo.clear()  # the values that repeat are back in at once; one-off ids never pile up
                memo[text] = known
        result, secret_hit, token_hit = known
        if notes is not None:
            if secret_hit:
                notes.append(f"{where}:secret-value")
            if token_hit:
                notes.append(f"{where}:token-shape")
        return result

    # -- structures --------------------------------------------------------------
    def arguments(self, args: Any, policy_rules: tuple[Iterable[str], Iterable[str]] | None,
                  notes: list[str]) -> Any:
        """A redacted copy of a call's arguments; `notes` collects "path:reason" entries."""
        redact, hashed = self._redact, self._hash
        if policy_rules and (policy_rules[0] or policy_rules[1]):
            pr, ph = _rule_set(policy_rules[0]), _rule_set(policy_rules[1])
            redact = (redact[0] | pr[0], redact[1] | pr[1])
            hashed = (hashed[0] | ph[0], hashed[1] | ph[1])
        return self._walk(args, "arguments", (), redact, hashed, notes, 0)

    def fields(self, value: Any, where: str, notes: list[str]) -> Any:
        """Any other field of a record: key-name and value rules, no field rules."""
        if isinstance(value, str):
            return self.scrub(value, notes, where) if len(value) >= MIN_SECRET_LEN else value
        return self._walk(value, where, (), _EMPTY, _EMPTY, notes, 0)

    def _walk(self, value: Any, where: str, path: tuple[str, ...], redact: tuple, hashed: tuple,
              notes: list[str], depth: int) -> Any:
        if isinstance(value, str):
            return self.scrub(value, notes, where)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return self._number(value, where, notes)
        if depth >= MAX_DEPTH:
            notes.append(f"{where}:too-deep")
            return "[NOT RECORDED: nested too deep]"
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for i, (k, v) in enumerate(value.items()):
                if i >= MAX_ITEMS:
                    out["…"] = f"[{len(value) - MAX_ITEMS} more keys not recorded]"
                    break
                key = str(k)
                if len(key) >= MIN_SECRET_LEN:
                    key = self.scrub(key, notes, f"{where}.(key)")  # a secret used as a key
                sub = (*path, key.lower())
                at = f"{where}.{key}"
                if _matches(redact, sub):
                    out[key] = REDACTED
                    notes.append(f"{at}:configured")
                elif _matches(hashed, sub):
                    out[key] = value_hash(v)
                    notes.append(f"{at}:hashed")
                elif v is not None and secret_key(key):
                    out[key] = REDACTED
                    notes.append(f"{at}:key-name")
                else:
                    out[key] = self._walk(v, at, sub, redact, hashed, notes, depth + 1)
            return out
        if isinstance(value, (list, tuple)):
            items = [self._walk(v, f"{where}[]", path, redact, hashed, notes, depth + 1) for v in value[:MAX_ITEMS]]
            if len(value) > MAX_ITEMS:
                items.append(f"[{len(value) - MAX_ITEMS} more items not recorded]")
            return items
        return self.scrub(str(value), notes, where)

    def _number(self, value: int | float, where: str, notes: list[str]) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
        secrets = self._scrubbed[0]
        if secrets:
            text = str(value)
            if len(text) >= MIN_SECRET_LEN and any(s in text for s in secrets):
                notes.append(f"{where}:secret-value")
                return REDACTED
        return value


def _scrub(text: str, secrets: tuple[str, ...]) -> tuple[str, bool, bool]:
    """`text` with `secrets` and token shapes replaced, cut to MAX_STRING; whether a secret, whether a token
    shape was found."""
    secret_hit = False
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
            secret_hit = True
    token_hit = False
    token_re = _token_re()
    if len(text) >= MIN_TOKEN_LEN and token_re.search(text) is not None:
        kinds: list[str] = []

        def replace(m: re.Match[str]) -> str:
            kind = m.lastgroup or "token"
            if kind == "long" and not _random_looking(m.group(0)):
                return m.group(0)
            if kind == "kv" and not any(c.isdigit() for c in m.group(0)[len(m.group(kind)):]):
                return m.group(0)  # "password reset_instructions_sent": words, not a credential
            if kind in ("scheme", "pdkey", "userinfo", "kv"):
                kinds.append("token-shape")
                return m.group(kind) + REDACTED
            kinds.append("token-shape")
            return REDACTED

        text = token_re.sub(replace, text)
        token_hit = bool(kinds)
    if len(text) > MAX_STRING:
        cut = len(text) - MAX_STRING
        text = text[:MAX_STRING] + f"…[{cut} more characters not recorded]"
    return text, secret_hit, token_hit


_EMPTY: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())


def _matches(rules: tuple[frozenset[str], frozenset[str]], path: tuple[str, ...]) -> bool:
    names, paths = rules
    if not names and not paths:
        return False
    return path[-1] in names or ".".join(path) in paths


def resolve_secret_values(source: Callable[[], list[str]] | None) -> list[str]:
    if source is None:
        return []
    return [v for v in source() if isinstance(v, str)]
