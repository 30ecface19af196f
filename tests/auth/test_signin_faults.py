"""Sign-in started by a tool call in the real proxy, where it used to get stuck: a declined or cancelled
sign-in must free the callback port at once (the error recommends `login`), the whole wait (asking the
client included) is bounded, and the log file that names users is private."""

from __future__ import annotations

import os
import stat
import time
from typing import Any

import anyio
import mcp_types as types
import pytest

from tests._support.auth import AuthProxy, open_in_stand_in_browser
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio


def port_listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


async def test_login_works_right_after_a_declined_sign_in(aproxy: AuthProxy) -> None:
    aproxy.write_pd()

    async def decline(_context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with aproxy.client(elicitation_callback=decline) as client:
        with anyio.fail_after(60):
            result = await client.call_tool("pd_get_current_user", {})
        assert result.is_error and "mcp-access-proxy login pd" in text_of(result)
        done = await anyio.to_thread.run_sync(lambda: aproxy.run("login", "pd"))
        assert done.returncode == 0, done.stderr  # the login the error recommends is not refused
        assert "Signed in to 'pd'" in done.stdout


async def test_a_cancelled_call_frees_the_callback_port(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    # A browser that "opens" and does nothing: the call waits for a sign-in that does not come.
    async with aproxy.client(env=aproxy.env(BROWSER="true")) as client:
        with anyio.move_on_after(60) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "pd_get_current_user", {})
                with anyio.fail_after(30):
                    while not port_listening(aproxy.sandbox.port):
                        await anyio.sleep(0.1)
                tg.cancel_scope.cancel()  # the user gives up: the client cancels the call
        assert not scope.cancelled_caught
        with anyio.fail_after(20):
            while port_listening(aproxy.sandbox.port):
                await anyio.sleep(0.1)
        done = await anyio.to_thread.run_sync(lambda: aproxy.run("login", "pd"))
        assert done.returncode == 0, done.stderr


async def test_the_whole_sign_in_wait_is_bounded_asking_the_client_included(aproxy: AuthProxy) -> None:
    aproxy.write_pd()

    async def slow_accept(_context: Any, params: Any) -> types.ElicitResult:
        await anyio.sleep(4.5)  # the user takes a while to accept, then never signs in
        return types.ElicitResult(action="accept")

    async with aproxy.client(env=aproxy.env(MCP_ACCESS_PROXY_SIGN_IN_WAIT="5"),
                             elicitation_callback=slow_accept) as client:
        started = time.monotonic()
        with anyio.fail_after(60):
            result = await client.call_tool("pd_get_current_user", {})
        took = time.monotonic() - started
        assert result.is_error
        text = text_of(result)
        assert "did not complete within 5 s" in text and "login pd" in text, text
        assert "keeps waiting" in text  # out of time, not declined: a late sign-in still lands
        # 4.5 s asking + a fresh 5 s wait would be 9.5 s; the bound is 5 s in all.
        assert took < 8.5, f"the call waited {took:.1f} s"
        # ...and it does land: the URL still works after the call gave up.
        url = next(w for w in text.split() if "/oauth/authorize?" in w).rstrip(":")
        browser = await anyio.to_thread.run_sync(open_in_stand_in_browser, url)
        assert browser.returncode == 0, browser.stderr
        with anyio.fail_after(30):
            again = await client.call_tool("pd_get_current_user", {})
        assert not again.is_error and "alice@example.com" in text_of(again)
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
async def test_the_log_file_is_private(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    async with aproxy.client() as client:
        with anyio.fail_after(60):
            result = await client.call_tool("pd_get_current_user", {})
        assert not result.is_error, text_of(result)
    logs = [p for p in aproxy.home.rglob("mcp-access-proxy.log")]
    assert logs, "serve wrote no log file"
    log = logs[0]
    assert "alice@example.com" in log.read_text()  # what makes it worth protecting
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    aproxy.assert_no_secret_leaked()
