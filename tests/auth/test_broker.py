"""The token broker with an injected clock: when it refreshes, that a refresh is single-flight between
brokers sharing a token store (as separate processes do), what a refused or unreachable token endpoint
leads to, and the region the sign-in reports."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from mcp_proxy.auth import endpoint
from mcp_proxy.auth.broker import TokenBroker, refresh_margin
from mcp_proxy.auth.errors import AuthUnavailable, SignInRequired
from mcp_proxy.auth.events import AuthEvents
from mcp_proxy.connectors.base import ConnectorError
from tests._support.auth import CLIENT_ID, Sandbox, open_in_stand_in_browser
from tests._support.broker import Clock, make_broker, sign_in

pytestmark = pytest.mark.anyio

DAY = 86400.0


def test_refresh_margin() -> None:
    assert refresh_margin(0, 30 * DAY) == DAY  # classic 30-day token: in its last day, like PagerDuty's client
    assert refresh_margin(0, DAY) == DAY / 4  # scoped 1-day token: after 18 h, not on every call
    assert refresh_margin(0, 60) == 30  # never closer than 30 s to expiry


async def test_refresh_happens_when_due_and_the_rotated_token_is_stored(sandbox: Sandbox, tmp_path: Path) -> None:
    clock = Clock(sandbox.oauth.clock())
    broker = make_broker(sandbox, tmp_path, clock)
    sign_in(broker)
    first = await broker.access_token()
    clock.now += 3600 - 900 - 5  # 3600 s token: refreshed when under 900 s are left
    assert await broker.access_token() == first
    assert sandbox.oauth.issued["refresh_token"] == 0
    clock.now += 10
    second = await broker.access_token()
    assert second != first and sandbox.oauth.issued["refresh_token"] == 1
    fresh = make_broker(sandbox, tmp_path, clock)  # another process reads what was stored
    assert await fresh.access_token() == second
    assert fresh.tokens.load().refresh_token in sandbox.oauth.active_refresh_tokens


async def test_brokers_sharing_a_store_refresh_once(sandbox: Sandbox, tmp_path: Path) -> None:
    clock = Clock(sandbox.oauth.clock())
    brokers = [make_broker(sandbox, tmp_path, clock) for _ in range(4)]
    sign_in(brokers[0])
    clock.now += 3500
    sandbox.oauth.refresh_delay = 0.5
    tokens: list[str] = []
    barrier = threading.Barrier(len(brokers))

    def run(broker: TokenBroker) -> None:
        barrier.wait()
        tokens.append(anyio.run(broker.access_token))

    threads = [threading.Thread(target=run, args=(b,)) for b in brokers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(tokens) == 4 and len(set(tokens)) == 1
    assert sandbox.oauth.issued["refresh_token"] == 1 and sandbox.oauth.issued["refresh_refused"] == 0


async def test_a_refused_refresh_forgets_the_token_and_asks_for_sign_in(sandbox: Sandbox, tmp_path: Path) -> None:
    clock = Clock(sandbox.oauth.clock())
    events: list[tuple[str, dict]] = []
    broker = make_broker(sandbox, tmp_path, clock,
                         events=AuthEvents(emit=lambda event, fields: events.append((event, fields))))
    sign_in(broker)
    sandbox.oauth.revoke_all()
    clock.now += 3500
    with pytest.raises(SignInRequired) as caught:
        await broker.access_token()
    assert "login pd" in str(caught.value) and not isinstance(caught.value, ConnectorError)
    assert broker.token_info() is None and broker.tokens.load() is None
    with pytest.raises(SignInRequired):
        await broker.access_token()
    assert sandbox.oauth.issued["refresh_refused"] == 1  # no second attempt with a dead token
    assert events == [("auth.refresh_failed", {"upstream": "pd", "user.email": "alice@example.com",
                                               "error.type": "invalid_grant"})]


async def test_an_unreachable_token_endpoint_keeps_a_valid_token_and_fails_an_expired_one(
        sandbox: Sandbox, tmp_path: Path) -> None:
    from mcp_proxy.sandbox.asgi_thread import free_port

    clock = Clock(sandbox.oauth.clock())
    sign_in(make_broker(sandbox, tmp_path, clock))
    broker = make_broker(sandbox, tmp_path, clock, token_url=f"http://127.0.0.1:{free_port()}/oauth/token")
    first = await broker.access_token()
    clock.now += 3500  # due, not expired: the old token is still good
    assert await broker.access_token() == first
    clock.now += 200  # expired, and the endpoint is still down
    with pytest.raises(AuthUnavailable) as caught:
        await broker.access_token()
    assert "could not reach 127.0.0.1" in str(caught.value)
    assert broker.tokens.load() is not None  # not forgotten: it may work once the network is back


async def test_region_comes_from_the_id_token_unless_the_config_pins_it(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roots: list[str] = []

    def identity(provider: Any, root: str, token: str) -> tuple[str, str]:
        roots.append(root)  # never the real PagerDuty: the test stays on loopback
        return "alice@example.com", "Alice"

    monkeypatch.setattr(endpoint, "fetch_identity", identity)
    sandbox.oauth.region = "eu"
    broker = make_broker(sandbox, tmp_path / "a", base_url=None)
    info = sign_in(broker)
    assert info.region == "eu" and broker.region == "eu"
    assert roots == ["https://api.eu.pagerduty.com"]

    # The connector follows the region on its next call.
    from mcp_proxy.connectors.pagerduty import build
    from mcp_proxy.upstreams.rest import OAuthCredentials

    hosts: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        assert request.headers["authorization"].startswith("Bearer pdus+_0")
        return httpx.Response(200, json={"user": {"id": "PALICE1", "email": "alice@example.com", "name": "Alice"}})

    credentials = OAuthCredentials(TokenBroker.for_upstream(broker.cfg, broker.paths, broker.store))
    connector = build(broker.cfg, credentials, transport=httpx.MockTransport(answer))
    assert connector.base_url == "https://api.pagerduty.com"  # the config's default, before any call
    await connector.call("get_current_user", {})
    assert hosts == ["api.eu.pagerduty.com"]
    await connector.aclose()

    pinned = make_broker(sandbox, tmp_path / "b", base_url=None, region="us")
    sign_in(pinned)
    assert pinned.region is None  # the connector keeps the configured region
    assert roots[-1] == "https://api.pagerduty.com"


async def test_token_info_is_none_for_another_app(sandbox: Sandbox, tmp_path: Path) -> None:
    sign_in(make_broker(sandbox, tmp_path))
    assert make_broker(sandbox, tmp_path).token_info().identity_email == "alice@example.com"
    other = make_broker(sandbox, tmp_path, client_id="another-app")
    assert other.token_info() is None
    with pytest.raises(SignInRequired):
        await other.access_token()
    assert CLIENT_ID != "another-app"


async def test_a_sign_in_nobody_finishes_ends_by_itself_and_frees_the_port(sandbox: Sandbox, tmp_path: Path) -> None:
    from mcp_proxy.auth.errors import SignInError
    from mcp_proxy.auth.session import JoinedSignIn

    broker = make_broker(sandbox, tmp_path)
    session = await broker.begin_sign_in(lifetime=1.5)
    joined = await broker.begin_sign_in()  # a second call in the same process waits for the same sign-in
    assert isinstance(joined, JoinedSignIn) and joined.url == session.url
    with pytest.raises(SignInError, match=r"did not complete within 0\.3 s"):
        await session.wait(0.3)
    session.close()  # the caller gave up; the listener keeps the URL alive until its lifetime ends
    assert broker.sign_in_running_elsewhere()
    with anyio.fail_after(15):  # lifetime over: listener closed, lock released
        while broker.sign_in_running_elsewhere():
            await anyio.sleep(0.1)
    with pytest.raises(SignInError, match=r"not completed within 1\.5 s"):
        await joined.wait(0.1)
    again = await broker.begin_sign_in(lifetime=30)
    assert again.url != session.url  # a new state and PKCE pair
    again.end()


async def test_events_given_at_construction_hear_the_sign_in_and_its_tokens(sandbox: Sandbox, tmp_path: Path) -> None:
    announced: list[Any] = []
    revealed: list[str] = []

    async def announce(info: Any) -> None:
        announced.append(info)

    broker = make_broker(sandbox, tmp_path, events=AuthEvents(reveal=revealed.append, announce=announce))
    session = await broker.begin_sign_in(lifetime=30)
    browser = await anyio.to_thread.run_sync(open_in_stand_in_browser, session.url)
    assert browser.returncode == 0, browser.stderr
    info = await session.wait(20)
    session.close()
    assert info.announced and [i.identity_email for i in announced] == ["alice@example.com"]
    assert revealed == []  # nothing handed out yet
    token = await broker.access_token()
    record = broker.tokens.load()
    assert token in revealed and record.refresh_token in revealed
    await broker.access_token()
    assert len(revealed) == 2  # each record once
