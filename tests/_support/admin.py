"""Helpers for the administrator's side: `tools.discovered` records and collector files made with the real
encoders, policy documents, the admin console run in-process, and headless Chromium driven over the DevTools
protocol (`--remote-debugging-pipe`: NUL-delimited JSON on fds 3 and 4, so no websocket client is needed)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp_proxy.audit.encode import encode
from mcp_proxy.audit.record import new_id
from mcp_proxy.policy.definition import definition_hash

CHROMIUM = shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium") or None
# Chromium's flags that work on this machine (closed network, root, no screen).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars")


def tool_def(name: str, description: str = "", schema: dict[str, Any] | None = None, *, title: str = "",
             annotations: dict[str, Any] | None = None) -> dict[str, Any]:
    """A raw upstream tool definition (as an upstream lists it)."""
    return {"name": name, "title": title, "description": description or f"{name} does things.",
            "inputSchema": schema or {"type": "object", "properties": {}},
            "annotations": annotations or {}}


def inventory_entry(upstream: str, tool: dict[str, Any], *, full: bool = False) -> dict[str, Any]:
    """One item of a tools.discovered record's `tools`, as server/hub.py writes it (optionally with the full
    definition, as a richer source would carry it)."""
    entry = {"name": tool["name"], "exposed": f"{upstream}_{tool['name']}", "title": tool.get("title") or "",
             "sha256": definition_hash(tool), "annotations": dict(tool.get("annotations") or {})}
    if full:
        entry.update({k: tool.get(k) for k in ("description", "inputSchema")})
    return entry


def discovered(upstream: str, tools: list[dict[str, Any]], user: str, when: str, *, host: str = "laptop-1",
               full: bool = False) -> dict[str, Any]:
    """A spooled `tools.discovered` record, with the fields the audit log writes itself."""
    items = [inventory_entry(upstream, t, full=full) for t in tools]
    return {"id": new_id(), "seq": 1, "time": when, "event_name": "tools.discovered", "user.email": user,
            "host.name": host, "service.name": "mcp-access-proxy", "service.version": "0.1.0",
            "service.instance.id": "inst-" + host, "policy.governed": True, "prev_hash": "",
            "upstream": upstream, "tool_count": len(items), "tools": items}


def _items(records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], bytes]]:
    return [(r, json.dumps(r, separators=(",", ":")).encode()) for r in records]


def write_otlp_file(path: Path, batches: list[list[dict[str, Any]]]) -> Path:
    """The OpenTelemetry Collector's file exporter: one ExportLogsServiceRequest JSON per line."""
    path.write_bytes(b"".join(encode("otlp-json", _items(b)) + b"\n" for b in batches))
    return path


def write_ndjson_file(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(encode("ndjson", _items(records)) + b"\n")
    return path


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def policy_dict(tools: dict[str, Any], *, revision: str = "2026-01-01.1", days: float = 7, **extra: Any) -> dict:
    now = time.time()
    return {"schema": 1, "revision": revision, "issued_at": iso(now - 3600), "expires_at": iso(now + days * 86400),
            "defaults": {"auto_approve": "none"}, "tools": tools, **extra}


def big_inventory(path: Path, *, tools: int = 5000, users: int = 200, upstreams: int = 20) -> Path:
    """An OTLP file of `tools` tools over `upstreams` upstreams, each tool seen by some of `users` users."""
    per = tools // upstreams
    now = time.time()
    batches = []
    for u in range(users):
        records = []
        for k in range(upstreams):
            if (u + k) % 4:  # each user has three quarters of the upstreams
                continue
            defs = [tool_def(f"tool_{k}_{i}", f"Tool {i} of upstream {k}.",
                             annotations={"readOnlyHint": i % 3 == 0}) for i in range(per)]
            records.append(discovered(f"up{k}", defs, f"user{u}@example.com", iso(now - u * 60),
                                      host=f"host-{u}"))
        if records:
            batches.append(records)
    return write_otlp_file(path, batches)


# -- headless Chromium over the DevTools protocol (pipe) ---------------------------------
class Chromium:
    """One headless Chromium with a page, driven over `--remote-debugging-pipe`."""

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900) -> None:
        if not (executable or CHROMIUM):
            raise RuntimeError("chromium not found")
        self.profile = tempfile.mkdtemp(prefix="admin-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds() -> None:
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.process = subprocess.Popen(
            [executable or CHROMIUM, *CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.page("Page.enable")
        self.page("Runtime.enable")
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, session: str | None = None, timeout: float = 20.0, **params: Any) -> Any:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def page(self, method: str, **params: Any) -> Any:
        return self.send(method, session=self.session, **params)

    def goto(self, url: str) -> None:
        self.page("Page.navigate", url=url)

    def eval(self, expression: str, timeout: float = 20.0) -> Any:
        result = self.send("Runtime.evaluate", session=self.session, timeout=timeout, expression=expression,
                           awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not true within {timeout}s: {expression}")
            time.sleep(0.05)

    def type_text(self, text: str) -> None:
        for ch in text:
            self.page("Input.dispatchKeyEvent", type="keyDown", text=ch, key=ch)
            self.page("Input.dispatchKeyEvent", type="keyUp", key=ch)

    def press(self, key: str, code: str | None = None, key_code: int = 0) -> None:
        params = {"key": key, "code": code or key, "windowsVirtualKeyCode": key_code}
        self.page("Input.dispatchKeyEvent", type="keyDown", **params)
        self.page("Input.dispatchKeyEvent", type="keyUp", **params)

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element."""
        box = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
                        " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        if not box:
            raise RuntimeError(f"no element {selector}")
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path: Path) -> None:
        import base64

        path.write_bytes(base64.b64decode(self.page("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


# -- the real `mcp-access-proxy admin` process ------------------------------------------------------------
class AdminProcess:
    """`mcp-access-proxy admin --no-browser ARGS...` as a child process; `client()` is a signed-in HTTP session
    (the one-time URL exchanged for the cookie), `post()` sends a state change with the page's CSRF token.
    stderr goes to a file (`stderr()`), so nothing the process says is lost or blocks it."""

    def __init__(self, args: list[str], env: dict[str, str], tmp: Path) -> None:
        import sys

        self.stderr_path = tmp / f"admin-stderr-{time.monotonic_ns()}.txt"
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "mcp_proxy", "admin", "--no-browser", *args],
                                        env=env, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "admin console: URL", or EOF when it did not start
        if not line.startswith("admin console: "):
            self.stop()
            raise RuntimeError(f"admin did not start (exit {self.process.returncode}): {self.stderr()}")
        self.url = line.split(": ", 1)[1].strip()
        self.base = self.url.split("/?", 1)[0]
        self.csrf = ""

    def client(self) -> Any:
        import httpx

        client = httpx.Client(base_url=self.base, timeout=30)
        assert client.get(self.url[len(self.base):]).status_code == 303  # the token for the session cookie
        page = client.get("/").text
        self.csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        return client

    def post(self, client: Any, path: str, body: dict[str, Any]) -> Any:
        return client.post(path, json=body, headers={"X-CSRF-Token": self.csrf})

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


@contextlib.contextmanager
def admin_process(args: list[str], env: dict[str, str], tmp: Path) -> Any:
    admin = AdminProcess(args, env, tmp)
    try:
        yield admin
    finally:
        admin.stop()


def run_cli(args: list[str], env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """One `mcp-access-proxy` command, run to its end."""
    import sys

    return subprocess.run([sys.executable, "-m", "mcp_proxy", *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, env=env, timeout=120)
