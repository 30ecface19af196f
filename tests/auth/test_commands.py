"""`login`, `logout` and `whoami` as a user runs them: the real command, the stand-in browser, the sandbox
OAuth server and PagerDuty emulator."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests._support.auth import SCOPED_SECRET, AuthProxy, open_in_stand_in_browser, url_from
from tests._support.proxy import PY


def test_login_signs_in_through_the_browser_and_reports_who(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    done = aproxy.run("login", "pd")
    assert done.returncode == 0, done.stderr
    assert "Signed in to 'pd' (PagerDuty) as alice@example.com." in done.stdout
    assert "scopes granted: read write" in done.stdout and "MISSING" not in done.stdout
    assert "copy this URL" in done.stderr
    assert url_from(done.stderr).startswith(f"{aproxy.sandbox.oauth_http.url}/oauth/authorize?")
    aproxy.assert_no_secret_leaked(done.stdout + done.stderr)


def test_login_without_a_browser_prints_the_url_and_counts_down(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    process = subprocess.Popen([PY, "-m", "mcp_proxy", "--config", str(aproxy.config), "login", "pd", "--no-browser",
                                "--timeout", "60"], env=aproxy.env(BROWSER="false"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        deadline = time.monotonic() + 30
        while "oauth/authorize?" not in seen or "s left" not in seen:
            assert time.monotonic() < deadline, seen
            seen += process.stderr.readline()
        browser = open_in_stand_in_browser(url_from(seen))  # the user pastes the URL into a browser
        assert browser.returncode == 0, browser.stderr
        out, rest = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, seen + rest
    assert "as alice@example.com" in out


def test_whoami_and_logout(aproxy: AuthProxy) -> None:
    aproxy.write({"pd": aproxy.sandbox.upstream(),
                  "og": {"kind": "opsgenie", "api_key": "env:OG_KEY"},
                  "pk": {"kind": "pagerduty", "api_key": "env:PD_KEY", "base_url": aproxy.sandbox.pd_url}})
    before = aproxy.run("whoami", env=aproxy.env(PD_KEY="pd_sandbox_account_key"))
    assert before.returncode == 0, before.stderr
    assert "pd (pagerduty, oauth): not signed in; run `mcp-access-proxy login pd`" in before.stdout
    assert "og (opsgenie, api_key): shared API key (env:OG_KEY)" in before.stdout
    assert ("pk (pagerduty, api_key): account-level API key: it belongs to no user; writes are made as From: "
            "alice@example.com") in before.stdout
    assert aproxy.run("login", "pd").returncode == 0
    who = aproxy.run("whoami")
    assert "pd (pagerduty, oauth): signed in as alice@example.com (Alice" in who.stdout, who.stdout
    assert "access token: valid until" in who.stdout and "scopes: read write" in who.stdout
    assert who.stdout.startswith("audit records name: alice@example.com")
    data = {row["upstream"]: row for row in json.loads(aproxy.run("whoami", "--json").stdout)}
    assert data["pd"]["identity"] == "alice@example.com" and data["pd"]["confirmed"] is True
    bye = aproxy.run("logout", "pd")
    assert bye.returncode == 0, bye.stderr
    assert "PagerDuty revoked the token" in bye.stdout and "alice@example.com" in bye.stdout
    assert aproxy.sandbox.oauth.issued["revocation"] == 2  # the refresh token and the access token
    assert not aproxy.sandbox.oauth.refresh and not aproxy.sandbox.oauth.access
    assert "not signed in" in aproxy.run("whoami").stdout
    assert "not signed in; nothing to remove" in aproxy.run("logout", "pd").stdout
    # Sign-in and sign-out in a terminal are audit records too, under the confirmed user.
    tail = aproxy.run("audit", "tail", "--json")
    records = [json.loads(line) for line in tail.stdout.splitlines()]
    auth = [(r["event_name"], r.get("origin"), r.get("user.email"), r.get("revoked")) for r in records
            if r["event_name"].startswith("auth.")]
    assert auth == [("auth.signed_in", "login", "alice@example.com", None),
                    ("auth.signed_out", "logout", "alice@example.com", True)], auth
    aproxy.assert_no_secret_leaked(who.stdout + bye.stdout + tail.stdout)


def test_logout_without_revocation_says_so(aproxy: AuthProxy) -> None:
    aproxy.write_pd(aproxy.sandbox.upstream(revoke_url=f"{aproxy.sandbox.oauth_http.url}/nowhere"))
    assert aproxy.run("login", "pd").returncode == 0
    bye = aproxy.run("logout", "pd")
    assert bye.returncode == 0
    assert "did not confirm the revocation" in bye.stdout and "Revoke All Tokens" in bye.stdout
    assert not (aproxy.home / "data" / "tokens" / "pd.json").exists()


def test_scoped_app_sends_its_secret_and_missing_scopes_are_reported(aproxy: AuthProxy) -> None:
    aproxy.sandbox.oauth.grant_only = {"incidents.read", "users.read"}  # the admin did not grant the rest
    aproxy.write_pd(aproxy.sandbox.scoped_upstream(["incidents.read", "incidents.write", "users.read",
                                                     "made.up.scope"]))
    done = aproxy.run("login", "pd")
    assert done.returncode == 0, done.stderr
    assert "scopes granted: incidents.read users.read" in done.stdout
    assert "MISSING scopes: incidents.write made.up.scope" in done.stdout
    token_requests = [e for e in aproxy.sandbox.oauth.log if e["path"] == "/oauth/token"]
    assert "client_secret" in token_requests[0]["keys"] and "code_verifier" in token_requests[0]["keys"]
    assert "MISSING scopes: incidents.write made.up.scope" in aproxy.run("whoami").stdout
    doctor = aproxy.run("doctor")
    assert "missing scopes incidents.write made.up.scope" in doctor.stdout
    assert SCOPED_SECRET not in done.stdout + done.stderr + doctor.stdout


def test_scoped_app_with_a_wrong_secret_fails_clearly(aproxy: AuthProxy) -> None:
    aproxy.write_pd(aproxy.sandbox.scoped_upstream())
    done = aproxy.run("login", "pd", env=aproxy.env(PD_CLIENT_SECRET="not-the-secret"))
    assert done.returncode == 1
    assert "did not complete" in done.stderr and "invalid_client" in done.stderr
    assert "not-the-secret" not in done.stderr + done.stdout


def test_scoped_app_without_its_secret_stored_says_how_to_store_it(aproxy: AuthProxy) -> None:
    aproxy.write_pd(aproxy.sandbox.scoped_upstream(client_secret="keyring:pd-client-secret"))
    done = aproxy.run("login", "pd")
    assert done.returncode == 1
    assert "mcp-access-proxy secret set pd-client-secret" in done.stderr
    assert aproxy.sandbox.oauth.authorize_requests == []  # refused before the browser opened


def test_login_reports_a_busy_port_and_no_keychain(aproxy: AuthProxy) -> None:
    import socket

    aproxy.write_pd()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", aproxy.sandbox.port))
        blocker.listen(1)
        busy = aproxy.run("login", "pd")
    assert busy.returncode == 1
    assert f"port {aproxy.sandbox.port} is already in use" in busy.stderr and "redirect_uri" in busy.stderr
    aproxy.config.write_text(aproxy.config.read_text().replace('store = "file"', 'store = "keyring"'))
    none = aproxy.run("login", "pd", env=aproxy.env(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"))
    assert none.returncode == 1
    assert '[secrets] store = "file"' in none.stderr and "Traceback" not in none.stderr


@pytest.mark.parametrize("table, message", [
    ({"kind": "opsgenie", "api_key": "env:X"}, "does not use per-user sign-in"),
])
def test_login_refuses_upstreams_without_oauth(aproxy: AuthProxy, table: dict, message: str) -> None:
    aproxy.write({"og": table})
    done = aproxy.run("login", "og")
    assert done.returncode == 64 and message in done.stderr
    assert "there is no upstream 'zz'" in aproxy.run("login", "zz").stderr
