"""A throwaway Secret Service for the real-keychain tests: a private D-Bus session bus and an unlocked
gnome-keyring, both under a temporary directory and stopped afterwards.

The tests never use the session the developer is logged in to: `keyring` entries are named after the service
(`mcp-access-proxy`) and the upstream (`oauth:pd`), not after the test's proxy home, so a test against the
desktop's own keychain would overwrite the developer's real tokens. Everything that should reach this Secret
Service gets `env()`: the private bus's address, and `keyring`'s config dir pointed at an empty one (a
`keyringrc.cfg` or `PYTHON_KEYRING_BACKEND` there could choose another backend).

CI installs the programs (`.ci/run`); elsewhere, without them, the tests skip and say what to install."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROGRAMS = ("dbus-daemon", "gnome-keyring-daemon")
# `.ci/run` sets this where it installed the programs: there, a Secret Service that cannot be started is a
# failure, not a skip, so CI cannot pass without having run the tests.
REQUIRE_VAR = "MCP_PROXY_TEST_REQUIRE_KEYCHAIN"
BACKEND = "keyring.backends.SecretService.Keyring"
START_TIMEOUT = 20.0  # seconds for the bus and the keyring to answer; both take well under one

_PROBE = """
import sys, keyring
backend = keyring.get_keyring()
name = f"{type(backend).__module__}.{type(backend).__name__}"
if name != sys.argv[1]:
    print(name)
    sys.exit(3)
keyring.set_password("mcp-access-proxy-probe", "probe", "ok")
assert keyring.get_password("mcp-access-proxy-probe", "probe") == "ok"
keyring.delete_password("mcp-access-proxy-probe", "probe")
"""


class Unavailable(Exception):
    """No Secret Service could be started here; the text says why and what to install."""


def missing_programs() -> list[str]:
    return [name for name in PROGRAMS if shutil.which(name) is None]


def required() -> bool:
    return os.environ.get(REQUIRE_VAR) == "1"


class SecretService:
    """Start with `start()`, stop with `stop()`; `env()` is the environment a process uses it with."""

    def __init__(self) -> None:
        self.root = Path()  # set by start(), once the programs are known to exist
        self.address = ""
        self._processes: list[subprocess.Popen[bytes]] = []

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in (os.environ if base is None else base).items() if k != "PYTHON_KEYRING_BACKEND"}
        env.update({"DBUS_SESSION_BUS_ADDRESS": self.address, "XDG_CONFIG_HOME": str(self.root / "config")})
        return env

    def start(self) -> None:
        missing = missing_programs()
        if missing:
            raise Unavailable(f"no Secret Service to test against: {' and '.join(missing)} not installed (on "
                              "Debian/Ubuntu: apt-get install gnome-keyring dbus-x11; .ci/run does this)")
        # A short path of its own: a unix socket path may not exceed 107 bytes, and pytest's tmp paths can.
        self.root = Path(tempfile.mkdtemp(prefix="mcp-kc-"))
        for sub in ("home", "config", "data", "run"):
            (self.root / sub).mkdir(mode=0o700)
        try:
            self._start_bus()
            self._start_keyring()
            self._wait_until_usable()
        except BaseException:
            self.stop()
            raise

    def _start_bus(self) -> None:
        bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nosyslog", "--print-address=1",
             f"--address=unix:path={self.root / 'bus'}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._processes.append(bus)
        assert bus.stdout is not None
        line = bus.stdout.readline().decode().strip()  # printed once the bus listens; EOF if it failed
        if not line:
            raise Unavailable(f"dbus-daemon did not start (exit code {bus.poll()})")
        self.address = line

    def _start_keyring(self) -> None:
        # The daemon's own files (keyrings, control socket) under the temporary root, never the user's.
        env = self.env()
        env.update({"HOME": str(self.root / "home"), "XDG_DATA_HOME": str(self.root / "data"),
                    "XDG_RUNTIME_DIR": str(self.root / "run")})
        daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._processes.append(daemon)
        assert daemon.stdin is not None
        daemon.stdin.write(b"test-keyring-password")  # --unlock: the new login keyring's password, to EOF
        daemon.stdin.close()

    def _wait_until_usable(self) -> None:
        """Until `keyring` in a fresh process picks the Secret Service by itself and round-trips a value."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            probe = subprocess.run([sys.executable, "-c", _PROBE, BACKEND], env=self.env(), capture_output=True,
                                   text=True, timeout=START_TIMEOUT)
            if probe.returncode == 0:
                return
            if probe.returncode == 3:  # a backend outranks the Secret Service here (macOS, Windows)
                raise Unavailable(f"keyring chose {probe.stdout.strip()} rather than the Secret Service; these "
                                  "tests run only against a throwaway Secret Service")
            for process in self._processes:
                if process.poll() is not None:
                    raise Unavailable(f"{process.args[0]} exited with code {process.returncode}")
            if time.monotonic() > deadline:
                last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
                raise Unavailable(f"the Secret Service did not answer within {START_TIMEOUT:g} s ({last})")
            time.sleep(0.2)

    def stop_keyring(self) -> None:
        """The keyring daemon goes (it crashed, or the user's session ended); the bus stays."""
        for process in self._processes[1:]:
            _end(process)

    def stop(self) -> None:
        for process in reversed(self._processes):  # the keyring first, then its bus
            _end(process)
        self._processes.clear()
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def running_secret_service() -> Iterator[SecretService]:
    """A started throwaway Secret Service for one test, stopped after it. Where none can start, the test skips,
    or fails where `REQUIRE_VAR` says this machine must run the keychain tests."""
    import pytest

    service = SecretService()
    try:
        service.start()
    except Unavailable as exc:
        if required():
            pytest.fail(f"{exc}; {REQUIRE_VAR}=1 says this machine must run the keychain tests")
        pytest.skip(str(exc))
    try:
        yield service
    finally:
        service.stop()
