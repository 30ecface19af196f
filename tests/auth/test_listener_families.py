"""The callback listener on both loopback families. A browser may send `localhost` to 127.0.0.1 or to ::1, so a
`localhost` redirect URI must be served on both; if another program holds the port on either, the sign-in stops
with the port named rather than leaving that program to receive the authorization code. A literal `127.0.0.1` or
`[::1]` redirect binds only that address. Only a machine without IPv6 at all (bind fails with EADDRNOTAVAIL or
EAFNOSUPPORT) is served on IPv4 alone. Real sockets throughout; the "no IPv6" machine is simulated."""

from __future__ import annotations

import errno
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_proxy.auth import loopback
from mcp_proxy.auth.errors import SignInError
from mcp_proxy.auth.loopback import CallbackListener
from tests._support.auth import AuthProxy, Sandbox
from tests._support.broker import make_broker

STATE = "S" * 43
WHERE = "upstreams.pd.redirect_uri"


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="this machine has no IPv6 loopback (::1 cannot be bound), so "
                                "there is no ::1 listener to test")


def free_port_both() -> int:
    """A port free on 127.0.0.1 and, where there is IPv6, on ::1 too."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if not HAS_IPV6:
                return port
            try:
                with socket.socket(socket.AF_INET6) as s6:
                    s6.bind(("::1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free on both loopback addresses")


@pytest.fixture
def port() -> int:
    return free_port_both()


def hold(address: str, port: int, *, reuse: bool = False) -> socket.socket:
    """Another program listening on address:port."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    if reuse:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(1)
    return sock


def bindable(address: str, port: int) -> bool:
    """Nothing listens on address:port (connections the listener closed may linger in TIME_WAIT: no matter)."""
    try:
        hold(address, port, reuse=True).close()
    except OSError:
        return False
    return True


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def listener(uri: str) -> CallbackListener:
    return CallbackListener(uri, STATE, None, where=WHERE, vendor="PagerDuty")


@pytest.fixture
def running() -> Iterator[list[CallbackListener]]:
    started: list[CallbackListener] = []
    yield started
    for cb in started:
        cb.close()


def start(started: list[CallbackListener], uri: str) -> CallbackListener:
    cb = listener(uri)
    started.append(cb)
    cb.start()
    return cb


# -- another program on the port ---------------------------------------------------------------------------
@pytest.mark.parametrize("address", [pytest.param("::1", marks=needs_ipv6), "127.0.0.1"])
def test_a_port_held_on_either_family_stops_a_localhost_sign_in(address: str, port: int,
                                                                running: list[CallbackListener]) -> None:
    with hold(address, port), pytest.raises(SignInError) as caught:
        start(running, f"http://localhost:{port}/callback")
    text = str(caught.value)
    assert f"port {port} is already in use on {address}" in text, text
    assert f'{WHERE} = "http://localhost:{port + 1}/callback"' in text and "Close that program" in text
    # Nothing is left listening on the other family: the port is all the blocker's again once it goes.
    assert bindable("127.0.0.1", port) and (not HAS_IPV6 or bindable("::1", port))


@pytest.mark.parametrize("address", [pytest.param("::1", marks=needs_ipv6), "127.0.0.1"])
def test_a_sign_in_with_the_port_held_on_either_family_fails_and_frees_its_lock(
        address: str, sandbox: Sandbox, tmp_path: Path) -> None:
    broker = make_broker(sandbox, tmp_path)
    with hold(address, sandbox.port), pytest.raises(SignInError) as caught:
        broker.begin_sign_in_blocking(lifetime=30)
    assert f"port {sandbox.port} is already in use on {address}" in str(caught.value)
    assert not broker.sign_in_running_elsewhere()  # the next attempt is not told "another process signs in"
    assert sandbox.oauth.authorize_requests == []


@needs_ipv6
def test_login_with_the_port_held_on_ipv6_names_the_port_and_the_fix(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    with hold("::1", aproxy.sandbox.port):
        busy = aproxy.run("login", "pd")
    assert busy.returncode == 1, busy.stderr
    assert f"port {aproxy.sandbox.port} is already in use on ::1" in busy.stderr
    assert "redirect_uri" in busy.stderr and "Traceback" not in busy.stderr
    done = aproxy.run("login", "pd")  # the port is free again: the sign-in goes through
    assert done.returncode == 0, done.stderr


# -- both free ---------------------------------------------------------------------------------------------
@needs_ipv6
def test_a_localhost_listener_answers_on_both_families(port: int, running: list[CallbackListener]) -> None:
    cb = start(running, f"http://localhost:{port}/callback")
    for host in ("127.0.0.1", "[::1]"):  # a foreign state: answered, and the wait goes on
        status, body = get(f"http://{host}:{port}/callback?state=other&code=x")
        assert status == 200 and "state mismatch" in body, host
    assert cb.foreign == 2 and not cb.done.is_set()
    status, body = get(f"http://[::1]:{port}/callback?state={STATE}&code=genuine")
    assert status == 200 and "Signed in" in body
    assert cb.outcome is not None and cb.outcome.code == "genuine"
    cb.close()
    assert bindable("127.0.0.1", port) and bindable("::1", port)


def test_a_localhost_listener_answers_on_ipv4(port: int, running: list[CallbackListener]) -> None:
    cb = start(running, f"http://localhost:{port}/callback")
    status, body = get(f"http://127.0.0.1:{port}/callback?state={STATE}&code=genuine")
    assert status == 200 and cb.outcome is not None and cb.outcome.code == "genuine"


@needs_ipv6
def test_a_literal_ipv4_redirect_binds_only_ipv4(port: int, running: list[CallbackListener]) -> None:
    cb = start(running, f"http://127.0.0.1:{port}/callback")
    assert bindable("::1", port)  # ::1 is not ours: the browser is never sent there
    get(f"http://127.0.0.1:{port}/callback?state={STATE}&code=v4")
    assert cb.outcome is not None and cb.outcome.code == "v4"


@needs_ipv6
def test_a_literal_ipv6_redirect_binds_only_ipv6(port: int, running: list[CallbackListener]) -> None:
    cb = start(running, f"http://[::1]:{port}/callback")
    assert bindable("127.0.0.1", port)
    get(f"http://[::1]:{port}/callback?state={STATE}&code=v6")
    assert cb.outcome is not None and cb.outcome.code == "v6"


@needs_ipv6
def test_a_literal_ipv6_redirect_with_the_port_held_names_ipv6(port: int, running: list[CallbackListener]) -> None:
    with hold("::1", port), pytest.raises(SignInError, match=rf"port {port} is already in use on ::1"):
        start(running, f"http://[::1]:{port}/callback")


# -- a machine without IPv6, and failures that are not that --------------------------------------------------
def _ipv6_fails_with(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    real = loopback._make_server

    def make(family: int, address: str, port: int, owner: CallbackListener):
        if family == socket.AF_INET6:
            raise OSError(number, "simulated")
        return real(family, address, port, owner)

    monkeypatch.setattr(loopback, "_make_server", make)


@pytest.mark.parametrize("number", [errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT])
def test_without_ipv6_a_localhost_listener_serves_ipv4_alone(
        number: int, port: int, running: list[CallbackListener], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    _ipv6_fails_with(monkeypatch, number)
    with caplog.at_level(logging.DEBUG, logger="mcp_proxy.auth.loopback"):
        cb = start(running, f"http://localhost:{port}/callback")
    assert any("::1" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records), caplog.records
    get(f"http://127.0.0.1:{port}/callback?state={STATE}&code=v4")
    assert cb.outcome is not None and cb.outcome.code == "v4"


@pytest.mark.parametrize("number", [errno.EPERM, errno.ENOBUFS])
def test_another_failure_on_ipv6_is_not_taken_for_no_ipv6(
        number: int, port: int, running: list[CallbackListener], monkeypatch: pytest.MonkeyPatch) -> None:
    _ipv6_fails_with(monkeypatch, number)
    with pytest.raises(SignInError) as caught:
        start(running, f"http://localhost:{port}/callback")
    text = str(caught.value)
    assert f"::1]:{port}" in text and WHERE in text, text
    assert bindable("127.0.0.1", port)  # the IPv4 half was not left listening


def test_a_denied_port_names_the_address(port: int, running: list[CallbackListener],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _ipv6_fails_with(monkeypatch, errno.EACCES)
    with pytest.raises(SignInError, match=rf"port {port} is reserved or not permitted on ::1"):
        start(running, f"http://localhost:{port}/callback")
    assert bindable("127.0.0.1", port)
