"""Sign-in in a real headless Chromium: the shared DevTools driver (`tests._support.admin.Chromium`, over
`--remote-debugging-pipe`), a `BROWSER` command that hands the proxy's URL to the test instead of opening it,
the user's part of a sign-in: open the URL, pick from the consent page's lists (Atlassian's site picker), click a
button, read the page the proxy's loopback listener answers with; and a `login` command run while the user does.

Without Chromium (`apt-get install chromium`) the browser tests skip and say so; `.ci/run` installs it and sets
MCP_PROXY_TEST_REQUIRE_BROWSER=1, which turns such a skip into a failure."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from tests._support.admin import CHROMIUM, Chromium

REQUIRE_VAR = "MCP_PROXY_TEST_REQUIRE_BROWSER"
SCREENSHOTS_VAR = "MCP_PROXY_TEST_SCREENSHOTS"  # a directory: the consent and result pages are saved there
WAIT = 90.0  # seconds for the proxy to open the URL, and for each page; Chromium is slow on a loaded machine

# `BROWSER` for Python's `webbrowser`: appends the URL to a file and succeeds, as a browser that opened it would.
_CATCH = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + chr(10))"


def browser_command(opened: Path) -> str:
    """A BROWSER value under which the proxy's `webbrowser.open(url)` appends `url` to `opened`."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(_CATCH)} {shlex.quote(str(opened))} %s"


@contextmanager
def chromium() -> Iterator[Chromium]:
    """A headless Chromium for one test; a skip where it is not installed (a failure where CI requires it)."""
    if CHROMIUM is None:
        reason = "Chromium is not installed (apt-get install chromium); the real-browser sign-in tests need it"
        if os.environ.get(REQUIRE_VAR) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_VAR}=1 says this machine must run them")
        pytest.skip(reason)
    browser = Chromium(width=1000, height=700)
    try:
        yield browser
    finally:
        browser.close()


def wait_for_url(opened: Path, count: int = 1, timeout: float = WAIT) -> str:
    """The `count`th URL the proxy opened (through `browser_command`)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = opened.read_text().splitlines() if opened.exists() else []
        if len(lines) >= count and lines[count - 1]:
            return lines[count - 1]
        if time.monotonic() > deadline:
            raise TimeoutError(f"the proxy opened no browser within {timeout:.0f} s")
        time.sleep(0.1)


@dataclass
class Landing:
    """What the user saw: the consent page's text, and the page the browser landed on after the click."""
    consent: str
    url: str
    title: str
    heading: str
    text: str


def choose(browser: Chromium, selector: str, value: str) -> None:
    """As the user picking an option of a `<select>`: the option must be offered; the page hears `change`."""
    found = browser.eval(f"(() => {{ const s = document.querySelector({json.dumps(selector)});"
                         f" if (!s || ![...s.options].some(o => o.value === {json.dumps(value)})) return false;"
                         f" s.value = {json.dumps(value)}; s.dispatchEvent(new Event('input', {{bubbles: true}}));"
                         " s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()")
    if not found:
        raise AssertionError(f"the consent page offers no {value!r} in {selector}")


def sign_in(browser: Chromium, url: str, button: str, redirect_uri: str, name: str = "sign-in",
            picks: Mapping[str, str] | None = None) -> Landing:
    """As the user: open the authorization URL, pick `picks` ({select: option value}) and click `#approve` or
    `#deny` on the consent page, follow the redirect to `redirect_uri` and read the page shown there."""
    shots = os.environ.get(SCREENSHOTS_VAR)
    browser.goto(url)
    browser.wait_for(f"document.readyState === 'complete' && !!document.querySelector('#{button}')", timeout=WAIT)
    consent = browser.eval("document.body.innerText")
    for selector, value in (picks or {}).items():
        choose(browser, selector, value)
    if shots:
        browser.screenshot(Path(shots) / f"{name}-consent.png")
    browser.click(f"#{button}")
    browser.wait_for(f"location.href.startsWith({redirect_uri!r} + '?') && document.readyState === 'complete'"
                     " && !!document.querySelector('h1')", timeout=WAIT)
    if shots:
        browser.screenshot(Path(shots) / f"{name}-result.png")
    return Landing(consent=consent, url=browser.eval("location.href"), title=browser.eval("document.title"),
                   heading=browser.eval("document.querySelector('h1').innerText"),
                   text=browser.eval("document.body.innerText"))


def answer_sign_in(browser: Chromium, opened: Path, authorize_url: str, redirect_uri: str, button: str, name: str,
                   picks: Mapping[str, str] | None = None) -> Landing:
    """As the user once the proxy opened a browser (`browser_command(opened)`): it must be at `authorize_url`;
    then `sign_in`."""
    url = wait_for_url(opened)
    assert url.startswith(authorize_url + "?"), url
    return sign_in(browser, url, button, redirect_uri, name, picks)


async def login_while_the_user_signs_in(login: Callable[[], subprocess.CompletedProcess],
                                        user: Callable[[], Landing]) -> tuple[subprocess.CompletedProcess, Landing]:
    """Run the `login` command (a blocking call) and, meanwhile, the user's part in the browser."""
    found: dict[str, subprocess.CompletedProcess] = {}

    async def run_login() -> None:
        found["done"] = await anyio.to_thread.run_sync(login)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run_login)
        landing = await anyio.to_thread.run_sync(user)
    return found["done"], landing
