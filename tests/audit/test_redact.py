"""Redaction: key names, configured secrets, token shapes, policy and config fields; no false positives."""

from __future__ import annotations

import hashlib
import json

import pytest

from mcp_proxy.audit.redact import MAX_STRING, REDACTED, Redactor, secret_key, value_hash

PD_OAUTH = "pdus+_0XBPWQQ_3f6c1a5e-7c2b-4d1e-9a8b-0c1d2e3f4a5b"
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlLWJ5dGVz"
RANDOM_KEY = "gK3jd9Fk2LmQp8Xz7Vb4Nc6Rt1Yh5Ws0"


@pytest.mark.parametrize("key", ["password", "Password", "api_key", "apiKey", "X-API-Key", "authorization",
                                 "auth", "accessToken", "refresh_token", "client_secret", "cookie", "Set-Cookie",
                                 "private_key", "routing_key", "integration_key", "credentials", "session_id",
                                 "passphrase", "GenieKey", "pass", "db_pass", "pw", "otp", "pin", "userPin", "PIN",
                                 "passcode", "totp_code", "Private-Key", "CREDENTIALS"])
def test_keys_that_name_credentials(key):
    assert secret_key(key)


@pytest.mark.parametrize("key", ["text", "author", "max_tokens", "key", "incident_key", "description", "authored_by",
                                 "keywords", "passage", "monkey", "secretary_name", "tool.sha256",
                                 "pinned", "spinner", "opinion", "passenger", "compass", "pwned_count", "topt"])
def test_ordinary_keys_are_kept(key):
    assert not secret_key(key)


@pytest.mark.parametrize("text,kept", [
    ("Bearer abcdefghijklmnopqrstuvwxyz", "Bearer "),
    ("Authorization: Token token=y_NbAkKc66ryYTWUXYEu", "Authorization: Token token="),
    ("GenieKey 3f2b6c1e-8a8b-4c55-9d1e-2a6f6b1c9e77", "GenieKey "),
    ("Splunk 3f2b6c1e-8a8b-4c55-9d1e-2a6f6b1c9e77", "Splunk "),
    (f"token {PD_OAUTH} end", "token "),
    (f"jwt={JWT}", "jwt="),
    ("key uo_AbCdEf0123456789xyz", "key "),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", ""),
    ("AKIAABCDEFGHIJKLMNOP", ""),
    (f"here {RANDOM_KEY}", "here "),
    ("-----BEGIN PRIVATE KEY-----\nMIIEv...\n-----END PRIVATE KEY-----", ""),
])
def test_token_shapes_are_redacted(text, kept):
    notes: list[str] = []
    out = Redactor().scrub(text, notes, "f")
    assert out.startswith(kept) and REDACTED in out
    secret_part = text[len(kept):].split()[0]
    assert secret_part not in out
    assert notes == ["f:token-shape"]


@pytest.mark.parametrize("text", [
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",  # a SHA-256 (definition hash)
    "3f2b6c1e-8a8b-4c55-9d1e-2a6f6b1c9e77",  # a UUID (Opsgenie alert id)
    "GetIncidentLogEntriesForServiceV2Beta",  # camelCase identifiers
    "ThisIsAVeryLongCamelCaseIdentifier2024Version",
    "list_incidents_for_service_with_details_v2",
    "https://api.pagerduty.com/incidents/PABC123/log_entries?limit=25",
    "PXPGF42 P0CKB8N",  # PagerDuty ids
    "The database on db-eu-west-1 is down since 09:00 UTC; 3 services affected.",
])
def test_ordinary_values_are_kept(text):
    assert Redactor().scrub(text) == text


def test_configured_secret_values_are_redacted_wherever_they_appear():
    r = Redactor()
    r.set_secrets(["s3cr3t-value-1", "s3cr3t-value-1-longer", "abc"])  # "abc" is too short to be redacted
    notes: list[str] = []
    args = {"text": "use s3cr3t-value-1-longer or s3cr3t-value-1", "nested": {"list": ["x s3cr3t-value-1 y", "abc"]}}
    out = r.arguments(args, None, notes)
    dumped = json.dumps(out)
    assert "s3cr3t" not in dumped and "-longer" not in dumped
    assert out["text"] == f"use {REDACTED} or {REDACTED}"
    assert out["nested"]["list"] == [f"x {REDACTED} y", "abc"]
    assert "arguments.text:secret-value" in notes and "arguments.nested.list[]:secret-value" in notes


def test_key_names_redact_every_value_type_but_other_numbers_are_kept():
    notes: list[str] = []
    out = Redactor().arguments({"password": "hunter22", "auth": {"user": "a", "pass": "b"}, "max_tokens": 500,
                                "token": 7, "headers": {"Authorization": "Basic dXNlcjpwYXNz"}, "pin": 4321,
                                "otp": 492817, "pw": 1.5, "pass": True, "api_key": None}, None, notes)
    assert out == {"password": REDACTED, "auth": REDACTED, "max_tokens": 500, "token": REDACTED,
                   "headers": {"Authorization": REDACTED}, "pin": REDACTED, "otp": REDACTED, "pw": REDACTED,
                   "pass": REDACTED, "api_key": None}
    assert set(notes) == {"arguments.password:key-name", "arguments.auth:key-name", "arguments.token:key-name",
                          "arguments.headers.Authorization:key-name", "arguments.pin:key-name",
                          "arguments.otp:key-name", "arguments.pw:key-name", "arguments.pass:key-name"}


def test_config_and_policy_rules_with_bare_names_and_dotted_paths():
    r = Redactor(redact_fields=["note"], hash_fields=["customer.id"])
    notes: list[str] = []
    args = {"note": "private", "deep": {"note": "also private"}, "customer": {"id": 42, "name": "Acme"},
            "items": [{"ssn": "123-45-6789", "ok": 1}], "body": {"text": "x"}}
    policy = (["items.ssn"], ["body"])
    out = r.arguments(args, policy, notes)
    assert out["note"] == REDACTED and out["deep"]["note"] == REDACTED
    assert out["customer"] == {"id": value_hash(42), "name": "Acme"}
    assert out["items"] == [{"ssn": REDACTED, "ok": 1}]
    assert out["body"] == value_hash({"text": "x"})
    assert value_hash({"text": "x"}) == "sha256:" + hashlib.sha256(b'{"text":"x"}').hexdigest()
    assert "arguments.customer.id:hashed" in notes and "arguments.items[].ssn:configured" in notes


def test_long_strings_are_cut_and_deep_structures_bounded():
    r = Redactor()
    out = r.arguments({"text": "a b " * 5000}, None, [])
    assert len(out["text"]) < MAX_STRING + 60 and out["text"].endswith("more characters not recorded]")
    deep: dict = {}
    cur = deep
    for _ in range(40):
        cur["x"] = {}
        cur = cur["x"]
    notes: list[str] = []
    assert "nested too deep" in json.dumps(r.arguments(deep, None, notes))
    assert any(n.endswith(":too-deep") for n in notes)


def test_non_json_values_become_strings():
    class Thing:
        def __str__(self) -> str:
            return "Bearer abcdefghijklmnopqrstuvwxyz"

    assert Redactor().fields(Thing(), "x", []) == f"Bearer {REDACTED}"


def test_a_configured_secret_is_redacted_as_a_number_and_as_a_dict_key():
    r = Redactor()
    r.set_secrets(["84736251", "tok_3f9a2b7c1d"])
    notes: list[str] = []
    out = r.arguments({"code": 84736251, "other": 12, "big": 1847362519, "headers": {"tok_3f9a2b7c1d": "x"}},
                      None, notes)
    assert out == {"code": REDACTED, "other": 12, "big": REDACTED, "headers": {REDACTED: "x"}}
    dumped = json.dumps([out, notes])
    assert "84736251" not in dumped and "tok_3f9a2b7c1d" not in dumped  # not in audit.redactions either
    assert "arguments.code:secret-value" in notes and "arguments.headers.(key):secret-value" in notes


@pytest.mark.parametrize("text,expected", [
    ("postgresql://admin:Summer2024pass@db.internal:5432/prod", f"postgresql://admin:{REDACTED}@db.internal:5432/prod"),
    ("see https://bob:p%40ss@example.com/x", f"see https://bob:{REDACTED}@example.com/x"),
    ("redis://:onlypassword@cache:6379", f"redis://:{REDACTED}@cache:6379"),
    ("use token 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", f"use token {REDACTED}"),
    ("api_key=9f86d081884c7d659a2f&limit=5", f"api_key={REDACTED}&limit=5"),
    ('"password": "correct-horse-battery-9"', f'"password": "{REDACTED}"'),
])
def test_url_passwords_and_values_after_credential_words_are_redacted(text, expected):
    notes: list[str] = []
    assert Redactor().scrub(text, notes, "f") == expected
    assert notes == ["f:token-shape"]


@pytest.mark.parametrize("text", [
    "https://api.opsgenie.com/v2/alerts/3f2b6c1e-8a8b-4c55-9d1e-2a6f6b1c9e77",  # no userinfo
    "mailto:alice@example.com and user@host:22",
    "alert 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b acknowledged",  # a hex id, no credential word
    "the token expired at 2026-01-01T00:00:00Z; password reset_instructions_were_sent",
    "secretary_name_for_the_2024_offsite",
])
def test_ids_and_ordinary_text_near_those_shapes_are_kept(text):
    assert Redactor().scrub(text) == text


def test_non_finite_numbers_become_strings_so_records_stay_strict_json():
    out = Redactor().arguments({"a": float("nan"), "b": [float("inf"), float("-inf")], "c": 1.5}, None, [])
    assert out == {"a": "NaN", "b": ["Infinity", "-Infinity"], "c": 1.5}
    assert Redactor().fields(float("nan"), "x", []) == "NaN"
    json.dumps(out, allow_nan=False)


def test_add_secret_redacts_a_run_time_value_from_then_on():
    r = Redactor()
    r.set_secrets(["configured-secret-1"])
    r.add_secret("short")  # under 8 characters: ignored
    r.add_secret("pdus+_runtime_access_token_value")
    r.add_secret("opaque-refresh-value-7")
    assert r.scrub("x opaque-refresh-value-7 y") == f"x {REDACTED} y"
    assert r.scrub("short and sweet") == "short and sweet"
    r.set_secrets(["configured-secret-2"])  # the configured values change; the added ones stay
    assert r.scrub("opaque-refresh-value-7 configured-secret-2") == f"{REDACTED} {REDACTED}"
    for i in range(100):
        r.add_secret(f"rotating-token-{i:03d}")
    assert r.scrub("rotating-token-099") == REDACTED and r.scrub("rotating-token-000") == "rotating-token-000"


# -- every credential word and word pair the module promises (mcp_proxy/audit/redact.py, rule 2) -------------
# Written out here, not imported from the module: dropping a word from the module must fail a test.
CREDENTIAL_WORDS = [
    "password", "passwd", "passphrase", "passcode", "pass", "pwd", "pw", "pin", "otp", "totp", "secret", "secrets",
    "token", "apikey", "apitoken", "authorization", "auth", "cookie", "cookies", "credential", "credentials",
    "privatekey", "bearer", "sessionid", "accesstoken", "refreshtoken", "clientsecret", "xapikey",
]
CREDENTIAL_PAIRS = [
    ("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("client", "secret"), ("session", "id"),
    ("set", "cookie"), ("routing", "key"), ("integration", "key"), ("service", "key"), ("signing", "key"),
    ("genie", "key"), ("access", "token"), ("refresh", "token"), ("api", "token"),
]
ORDINARY_KEYS = ["id", "name", "incident_id", "title", "status"]
PLAIN_VALUE = "hunter2 plain"  # no token shape: only the key's name can get it redacted


def word_variants(word: str) -> list[str]:
    """The spellings of a key holding one credential word: as is, upper case, capitalized, camelCase after and
    before another word, and with a prefix or suffix word joined by `_` or `-`."""
    return [word, word.upper(), word.capitalize(), f"x_{word}", f"X-{word.upper()}", f"{word}_value",
            f"my{word.capitalize()}", f"{word}Value", f"db_{word}_2"]


def pair_variants(first: str, second: str) -> list[str]:
    """The spellings of a key holding a credential word pair: joined with `_` or `-`, camelCase, upper case,
    header style (`X-Api-Key`, `X-API-Key`), and with a prefix or suffix word."""
    return [f"{first}_{second}", f"{first}-{second}", f"{first}{second.capitalize()}",
            f"{first.upper()}_{second.upper()}", f"{first.capitalize()}-{second.capitalize()}",
            f"X-{first.upper()}-{second.capitalize()}", f"x_{first}_{second}", f"{first}_{second}_value",
            f"my{first.capitalize()}{second.capitalize()}"]


def unredacted(keys: list[str]) -> list[str]:
    """The keys among `keys` whose value survives Redactor.arguments (each key in its own call)."""
    kept = []
    for key in keys:
        notes: list[str] = []
        out = Redactor().arguments({key: PLAIN_VALUE, "name": PLAIN_VALUE}, None, notes)
        assert out["name"] == PLAIN_VALUE, "the value itself must not look like a credential"
        if out[key] != REDACTED or notes != [f"arguments.{key}:key-name"] or not secret_key(key):
            kept.append(key)
    return kept


@pytest.mark.parametrize("word", CREDENTIAL_WORDS)
def test_every_credential_word_is_redacted_in_every_spelling(word):
    assert unredacted(word_variants(word)) == []


@pytest.mark.parametrize("pair", CREDENTIAL_PAIRS, ids="+".join)
def test_every_credential_word_pair_is_redacted_in_every_spelling(pair):
    assert unredacted(pair_variants(*pair)) == []


def test_ordinary_keys_next_to_credentials_are_kept():
    args = {key: f"value of {key}" for key in ORDINARY_KEYS} | {"secret": PLAIN_VALUE}
    notes: list[str] = []
    out = Redactor().arguments(args, None, notes)
    assert out == {key: f"value of {key}" for key in ORDINARY_KEYS} | {"secret": REDACTED}
    assert notes == ["arguments.secret:key-name"]
    assert not any(secret_key(key) for key in ORDINARY_KEYS)


def test_a_string_scrubbed_before_a_secret_was_added_is_scrubbed_again_after():
    # Short strings are remembered once scrubbed (most of a record's strings repeat on every call); a secret
    # added later must still be found in a string that was remembered before it.
    r = Redactor()
    text = "ticket for sess-4471-alpha"
    notes: list[str] = []
    assert r.scrub(text, notes, "reason") == text and notes == []
    r.add_secret("sess-4471-alpha")
    assert r.scrub(text, notes, "reason") == f"ticket for {REDACTED}"
    assert notes == ["reason:secret-value"]
    r.set_secrets(["ticket f"])
    assert r.scrub(text, None) == f"{REDACTED}or {REDACTED}"


def test_a_remembered_string_still_notes_where_it_was_redacted():
    r = Redactor()
    r.set_secrets(["hunter2-hunter2"])
    for where in ("reason", "error.message"):
        notes: list[str] = []
        assert r.fields("pw hunter2-hunter2 ghp_" + "a1B2" * 9, where, notes).count(REDACTED) == 2
        assert notes == [f"{where}:secret-value", f"{where}:token-shape"]
