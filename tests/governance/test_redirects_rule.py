"""The shared redirect and origin rule (mcp_proxy/httpsafe.py): the decision on URLs, and the guard's hooks on a
real httpx client, one with a mock https origin (no TLS server on loopback) and one across two real local
servers."""

from __future__ import annotations

import httpx
import pytest

from mcp_proxy.errors import ProxyError
from mcp_proxy.httpsafe import OriginGuard, RedirectRefused, origin_of, redirect_problem
from tests._support.redirects import origins

SECRET = "s3cr3t-header-value-0123456789"


@pytest.mark.parametrize("source,target", [
    ("https://policy.example.com/a", "http://policy.example.com/a"),
    ("https://policy.example.com/a", "http://127.0.0.1:8080/a"),
    ("https://policy.example.com:8443/a", "http://policy.example.com:8443/a"),
])
def test_a_downgrade_is_refused_and_names_both_origins(source, target):
    problem = redirect_problem(source, target)
    assert problem is not None and "downgrade" in problem
    assert str(origin_of(source)) in problem and str(origin_of(target)) in problem


@pytest.mark.parametrize("source,target", [
    ("https://policy.example.com/a", "https://cdn.example.com/a"),  # another host
    ("https://policy.example.com/a", "https://policy.example.com:8443/a"),  # another port
    ("http://127.0.0.1:8080/a", "http://127.0.0.1:8081/a"),
    ("http://127.0.0.1:8080/a", "http://localhost:8080/a"),  # another name for the same host is another origin
    ("http://127.0.0.1:8080/a", "https://127.0.0.1:8080/a"),  # an upgrade is still another origin
])
def test_another_origin_is_refused(source, target):
    problem = redirect_problem(source, target)
    assert problem is not None and "origin" in problem and "downgrade" not in problem
    assert str(origin_of(target)) in problem


@pytest.mark.parametrize("source,target", [
    ("https://policy.example.com/a", "https://policy.example.com/b?x=1"),
    ("https://policy.example.com:443/a", "https://POLICY.example.com/b"),  # the default port, any case
    ("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b"),
])
def test_the_same_origin_is_no_problem(source, target):
    assert redirect_problem(source, target) is None


def test_origins_never_show_user_info_path_or_query():
    origin = origin_of(f"https://user:{SECRET}@policy.example.com/p?token={SECRET}")
    assert str(origin) == "https://policy.example.com"
    problem = redirect_problem("https://policy.example.com/", f"http://x:{SECRET}@evil.example/?t={SECRET}")
    assert problem is not None and SECRET not in problem


def test_an_unreadable_url_is_an_origin_of_its_own():
    assert redirect_problem("https://policy.example.com/", "https://policy.example.com:99999/") is not None


def _mock_https(calls: list[httpx.Request], location: str) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.url.scheme == "https":
            return httpx.Response(302, headers={"Location": location})
        return httpx.Response(200, json={"ok": True})
    return httpx.MockTransport(handler)


def test_the_hooks_refuse_a_downgrade_before_anything_is_sent():
    calls: list[httpx.Request] = []
    guard = OriginGuard("https://policy.example.com/p", what="the policy server", fix="fix it", follow=True)
    with httpx.Client(transport=_mock_https(calls, "http://policy.example.com/p"), follow_redirects=True,
                      event_hooks=guard.hooks()) as client, pytest.raises(RedirectRefused) as caught:
        client.get("https://policy.example.com/p", headers={"X-API-Key": SECRET})
    assert [str(c.url) for c in calls] == ["https://policy.example.com/p"]
    message = str(caught.value)
    assert "https://policy.example.com" in message and "http://policy.example.com" in message
    assert "downgrade" in message and "fix it" in message and SECRET not in message
    assert isinstance(caught.value, ProxyError) and caught.value.error_type == "redirect_refused"


@pytest.mark.anyio
async def test_the_async_hooks_follow_within_the_origin_and_refuse_to_leave_it():
    with origins(2) as (home, other):
        home.redirect("/old", "/new")
        home.serve("/new", b'{"ok": true}')
        home.redirect("/away", other.url + "/new", 307)
        other.serve("/new", b'{"ok": true}')
        guard = OriginGuard(home.url + "/old", what="the policy server", fix="fix it", follow=True)
        async with httpx.AsyncClient(follow_redirects=True, event_hooks=guard.async_hooks()) as client:
            response = await client.get(home.url + "/old", headers={"X-API-Key": SECRET})
            assert response.status_code == 200 and response.json() == {"ok": True}
            with pytest.raises(RedirectRefused) as caught:
                await client.get(home.url + "/away", headers={"X-API-Key": SECRET, "Cookie": f"c={SECRET}"})
            with pytest.raises(RedirectRefused):  # a request aimed elsewhere is refused before it is sent
                await client.get(other.url + "/new", headers={"X-API-Key": SECRET})
        assert other.requests() == [] and SECRET not in other.header_values()
        assert [seen.path for seen in home.requests()] == ["/old", "/new", "/away"]
        assert home.url in str(caught.value) and other.url in str(caught.value) and SECRET not in str(caught.value)


def test_a_guard_that_does_not_follow_refuses_even_a_same_origin_redirect():
    with origins(1) as (home,):
        home.redirect("/old", "/new")
        guard = OriginGuard(home.url, what="the collector", fix="set [audit] collector", follow=False)
        with httpx.Client(follow_redirects=False, event_hooks=guard.hooks()) as client, \
                pytest.raises(RedirectRefused) as caught:
            client.post(home.url + "/old", content=b"{}")
        assert "redirect" in str(caught.value) and "set [audit] collector" in str(caught.value)
        assert [seen.path for seen in home.requests()] == ["/old"]
