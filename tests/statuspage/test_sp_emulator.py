"""The emulator's own behaviour over raw HTTP: auth, paths, error bodies, vendor defaults, hooks."""

from __future__ import annotations

import httpx
import pytest

from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from mcp_proxy.sandbox.statuspage import PAGE, create_app
from tests._support.statuspage import KEY, Sandbox

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"OAuth {KEY}"}


async def test_auth_shapes(sp: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sp.url) as client:
        for headers in ({}, {"Authorization": f"Bearer {KEY}"}, {"Authorization": "OAuth nope"},
                        {"Authorization": f"OAuth{KEY}"}):
            r = await client.get("/pages", headers=headers)
            assert r.status_code == 401 and r.json() == {"message": "Could not authenticate"}
        r = await client.get("/pages.json", headers={"Authorization": f"oauth {KEY}"})
        assert r.status_code == 200 and len(r.json()) == 2
    assert all("authorization" not in e["headers"] for e in sp.emulator.log)


async def test_unknown_paths_methods_and_bodies(sp: Sandbox) -> None:
    sp.allow("no such operation")
    sp.allow("-> 405: status not declared")
    sp.allow("the body is not JSON")
    async with httpx.AsyncClient(base_url=sp.url, headers=AUTH) as client:
        r = await client.get(f"/pages/{PAGE}/nothing-here")
        assert r.status_code == 404 and "message" in r.json()
        r = await client.delete(f"/pages/{PAGE}/components")
        assert r.status_code == 405 and r.json() == {"message": "Method not allowed"}
        r = await client.post(f"/pages/{PAGE}/incidents", content="incident[name]=x",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400 and "JSON" in r.json()["message"]
        r = await client.post(f"/pages/{PAGE}/incidents", content="{not json",
                              headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        r = await client.post(f"/pages/{PAGE}/incidents", json={"incident": {"name": " "}})
        assert r.status_code == 422 and r.json() == {"message": "Name can't be blank"}
        r = await client.get(f"{sp.url.removesuffix('/v1')}/v2/pages")
        assert r.status_code == 404


async def test_notifications_default_to_true_as_at_statuspage(sp: Sandbox) -> None:
    """Why the tools make the choice explicit: leave the field out and subscribers are emailed."""
    async with httpx.AsyncClient(base_url=sp.url, headers=AUTH) as client:
        r = await client.post(f"/pages/{PAGE}/incidents", json={"incident": {"name": "Silent?"}})
        assert r.status_code == 201
        iid = r.json()["id"]
        assert sp.emulator.outbox[-1]["incident_id"] == iid and sp.emulator.outbox[-1]["subscribers"] == 5
        # A body with an unchanged status still adds an update.
        r = await client.patch(f"/pages/{PAGE}/incidents/{iid}",
                               json={"incident": {"body": "Still looking.", "deliver_notifications": False}})
        assert r.status_code == 200 and len(r.json()["incident_updates"]) == 2
        assert r.json()["incident_updates"][0]["body"] == "Still looking."
        assert sp.emulator.outbox[-1].get("update_id") != r.json()["incident_updates"][0]["id"]


async def test_fail_next_and_rate_limit_hooks(sp: Sandbox) -> None:
    sp.allow("-> 418: status not declared")
    sp.emulator.fail_next(418, "teapot", times=2)
    async with httpx.AsyncClient(base_url=sp.url, headers=AUTH) as client:
        statuses = [(await client.get("/pages")).status_code for _ in range(3)]
        assert statuses == [418, 418, 200]
        sp.emulator.rate_limit, sp.emulator.rate_limit_status, sp.emulator.rate_window = True, 420, 1.0
        first, second = await client.get("/pages"), await client.get("/pages")
        assert first.status_code == 200 and second.status_code == 420
        assert int(second.headers["retry-after"]) >= 1 and second.json()["message"]
        other = await client.get("/pages", headers={"Authorization": "OAuth sp0other0key" + "0" * 51})
        assert other.status_code == 200  # the limit is per key


def test_unseeded_app_and_default_key() -> None:
    server = serve_in_thread(create_app(seed=False))
    try:
        r = httpx.get(f"{server.url}/v1/pages", headers={"Authorization": "OAuth sp_sandbox_key"})
        assert r.status_code == 200 and r.json() == []
    finally:
        server.stop()
