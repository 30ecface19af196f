"""No record, no call, through the real process: while the audit spool cannot be written (here: a file-size
limit of 0 bytes, as a full disk or a quota would), a call is refused with a clear error and never reaches
the upstream; once writing works again, one `audit.gap` record says how many calls were refused and when."""

from __future__ import annotations

import json
import resource
import subprocess
import threading
import time

from tests._support.audit import home_paths, spool_records
from tests._support.proxy import PY, stdio_upstream
from tests._support.wire import initialize_line

INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})


def _no_file_may_grow() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def test_calls_are_refused_while_the_spool_cannot_be_written_and_the_gap_is_recorded(proxy, tmp_path):
    proxy.write({"f": stdio_upstream()})
    p = subprocess.Popen([PY, *proxy.argv()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=proxy.env(), text=True, preexec_fn=_no_file_may_grow)
    assert p.stdin is not None and p.stdout is not None
    replies: dict[int, dict] = {}
    threading.Thread(target=lambda: [replies.setdefault(m.get("id"), m) for m in map(json.loads, p.stdout)],
                     daemon=True).start()

    def ask(rid: int, method: str, params: dict | None = None) -> dict:
        message: dict = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            message["params"] = params
        p.stdin.write(json.dumps(message) + "\n")
        p.stdin.flush()
        deadline = time.monotonic() + 30
        while rid not in replies:
            assert time.monotonic() < deadline, f"no answer to {method}"
            time.sleep(0.02)
        return replies[rid]

    p.stdin.write(initialize_line("2025-11-25") + "\n" + INITIALIZED + "\n")
    p.stdin.flush()
    ask(2, "tools/list")
    refused = ask(3, "tools/call", {"name": "f_echo", "arguments": {"text": "while full"}})["result"]
    assert refused["isError"] and "cannot write its audit log" in refused["content"][0]["text"]
    ask(4, "tools/call", {"name": "f_nope", "arguments": {}})  # a denial that cannot be recorded counts too
    assert not any(r["event_name"].startswith("mcp.tool") for r in spool_records(home_paths(proxy.home)))

    resource.prlimit(p.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    ok = ask(5, "tools/call", {"name": "f_echo", "arguments": {"text": "space again"}})["result"]
    assert not ok.get("isError") and ok["content"][0]["text"] == "space again"
    p.stdin.close()
    assert p.wait(15) == 0
    records = spool_records(home_paths(proxy.home))
    [gap] = [r for r in records if r["event_name"] == "audit.gap"]
    assert gap["audit.gap.refused_calls"] == 2 and gap["audit.gap.first"] <= gap["audit.gap.last"]
    started = [r for r in records if r["event_name"] == "mcp.tool.started"]
    assert [r["gen_ai.tool.call.arguments"]["text"] for r in started] == ["space again"], \
        "the refused call never started: nothing reached the upstream"
    assert records.index(gap) < records.index(started[0]), "the gap is on record before the next call"
    status = subprocess.run([PY, *proxy.argv(), "audit", "status"], env=proxy.env(), capture_output=True, text=True,
                            timeout=60)
    assert "2 call(s) refused" in status.stdout and "the spool takes new records" in status.stdout, status.stdout
    doctor = subprocess.run([PY, *proxy.argv(), "doctor"], env=proxy.env(), capture_output=True, text=True,
                            timeout=120)
    assert "2 call(s) refused" in doctor.stdout + doctor.stderr


def test_doctor_fails_while_the_spool_cannot_be_written(proxy):
    proxy.write({"f": stdio_upstream()})
    doctor = subprocess.run([PY, *proxy.argv(), "doctor"], env=proxy.env(), capture_output=True, text=True,
                            timeout=120, preexec_fn=_no_file_may_grow)
    out = doctor.stdout + doctor.stderr
    assert "audit writable" in out and "proxies refuse every call" in out, out[-2000:]
