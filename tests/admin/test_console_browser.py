"""The console in a real browser (headless Chromium over the DevTools protocol): load it, filter, approve a
pending tool, sign and publish to the sandbox policy server; then a real proxy syncs the published policy
and the tool is callable. With MCP_ADMIN_SCREENSHOTS=DIR it also saves the main screens there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mcp_proxy.admin.inventory import read_inventory
from mcp_proxy.admin.review import Review
from mcp_proxy.admin.server import Console, Publisher
from mcp_proxy.policy.signature import generate_key_pair, load_private_key, sign_jws
from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from mcp_proxy.sandbox.policy_server import create_app
from tests._support.admin import CHROMIUM, Chromium, discovered, policy_dict, tool_def, write_otlp_file
from tests._support.policy_process import ECHO_HASH
from tests._support.proxy import stdio_upstream, text_of
from tests.gateway.fake_upstream import ECHO

# .ci/run installs Chromium and sets MCP_PROXY_TEST_REQUIRE_BROWSER=1: there a missing browser fails, not skips.
_MISSING = CHROMIUM is None and not os.environ.get("MCP_PROXY_TEST_REQUIRE_BROWSER")
pytestmark = [pytest.mark.anyio, pytest.mark.skipif(_MISSING, reason="Chromium is not installed (apt-get install "
                                                    "chromium); the browser test needs /usr/bin/chromium")]

ECHO_DEF = tool_def("echo", "Echo the text back.", ECHO, annotations={"readOnlyHint": True})
ADD_DEF = tool_def("add", "Add two numbers.", {"type": "object", "properties": {"a": {"type": "number"}}})


async def test_filter_approve_sign_publish_then_a_proxy_can_call_the_tool(proxy, tmp_path):
    from mcp_proxy.policy.definition import definition_hash

    assert definition_hash(ECHO_DEF) == ECHO_HASH
    private, public, _ = generate_key_pair()
    key = load_private_key(private)
    start = policy_dict({"f.add": {"state": "disabled"}}, revision="2026-01-01.1")
    app = create_app(document=sign_jws(json.dumps(start).encode(), key).encode())
    server = serve_in_thread(app)
    inventory = write_otlp_file(tmp_path / "otlp.json", [
        [discovered("f", [ECHO_DEF, ADD_DEF], "alice@example.com", "2026-11-20T10:00:00Z")],
        [discovered("f", [ECHO_DEF], "bob@example.com", "2026-11-21T10:00:00Z")]])
    console = Console(Review(start, read_inventory([inventory]), source=server.url, signature="EdDSA"),
                      Publisher(sign=lambda payload: sign_jws(payload, key), put_url=server.url + "/policy.jws")
                      ).start()
    shots = os.environ.get("MCP_ADMIN_SCREENSHOTS")
    browser = Chromium()
    try:
        browser.goto(console.url)
        browser.wait_for("document.body.dataset.rendered === '1'")
        assert browser.eval("document.activeElement.id") == "filter"  # filter-as-you-type, focused on load
        assert browser.eval("[...document.querySelectorAll('#rows td.state')].map(e => e.textContent)") == \
            ["pending", "disabled"]
        if shots:
            browser.screenshot(Path(shots) / "admin-pending.png")
        browser.type_text("ech")
        browser.wait_for("document.querySelectorAll('#rows tr').length === 1")
        browser.press("Enter", key_code=13)  # first match, details open
        browser.wait_for("document.querySelector('#detail h2').textContent === 'f.echo'")
        browser.click("#approve")
        browser.wait_for("document.querySelector('#rows td.state').textContent === 'approved'")
        for toolset in ("incident-response", "read-only-basics"):
            browser.eval(f"document.getElementById('toolset-name').value = '{toolset}'")
            browser.click("#add-toolset")
            browser.wait_for(f"document.querySelector('#rows td.sets').textContent.includes('{toolset}')")
        # The toolsets column is readable: each name whole (not cut short) on one line, inside its cell.
        cell = browser.eval(
            "(() => { const td = document.querySelector('#rows td.sets'), box = td.getBoundingClientRect();"
            " return {width: box.width, names: [...td.querySelectorAll('span')].map((s) => {"
            " const r = s.getBoundingClientRect(); const whole = s.scrollWidth <= s.clientWidth;"
            " return [s.textContent, r.height < 25 && r.right <= box.right && whole]; })}; })()")
        assert cell["names"] == [["incident-response", True], ["read-only-basics", True]], cell
        if shots:
            browser.screenshot(Path(shots) / "admin-approved.png")
        browser.click("#publish")
        result = browser.wait_for("(t => t.startsWith('Published') && t)"
                                  "(document.querySelector('#publish-result').textContent)")
        assert "signed" in result and app.state.puts
    finally:
        browser.close()
        console.close()
    extra = (f'[policy]\nsource = "{server.url}/policy.jws"\npoll_interval = 300\n'
             f"public_keys = [{json.dumps(public.decode())}]\n")
    proxy.write({"f": stdio_upstream()}, extra=extra)
    try:
        async with proxy.client() as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "f_echo" in names and "f_add" not in names
            ok = await client.call_tool("f_echo", {"text": "approved in the browser"})
            assert not ok.is_error and text_of(ok) == "approved in the browser"
    finally:
        server.stop()
