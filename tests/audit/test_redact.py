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
                                 "passphrase", "GenieKey"])
def test_keys_that_name_credentials(key):
    assert secret_key(key)


@pytest.mark.parametrize("key", ["text", "author", "max_tokens", "key", "incident_key", "description", "authored_by",
                                 "keywords", "passage", "monkey", "secretary_name", "tool.sha256"])
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


def test_key_names_redact_strings_and_structures_but_keep_numbers():
    notes: list[str] = []
    out = Redactor().arguments({"password": "hunter22", "auth": {"user": "a", "pass": "b"}, "max_tokens": 500,
                                "token": 7, "headers": {"Authorization": "Basic dXNlcjpwYXNz"}}, None, notes)
    assert out == {"password": REDACTED, "auth": REDACTED, "max_tokens": 500, "token": 7,
                   "headers": {"Authorization": REDACTED}}
    assert set(notes) == {"arguments.password:key-name", "arguments.auth:key-name",
                          "arguments.headers.Authorization:key-name"}


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
